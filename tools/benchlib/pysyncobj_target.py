"""PySyncObj as a reference point: a local cluster of `pysyncobj_node.py` processes, run
by an interpreter the user names (--pysyncobj-python; PySyncObj is not a dependency of
abcd), and the benchmark loop that drives it.

PySyncObj has no network client protocol, so the load generator is a closed loop inside
the leader's process (see pysyncobj_node.py): its CPU is part of the leader's, and there
is no client process.  PySyncObj keeps its log in memory and never fsyncs (not
durable): the figures are a reference point, not a like-for-like comparison with abcd
or etcd, which sync every write to disk.

Processes are handled as cluster.py does: each node runs in its own session (a
terminal's Ctrl-C reaches only bench.py, which then stops the nodes), asks the kernel
for SIGTERM should bench.py die without cleaning up, and also exits when its stdin (a
pipe from bench.py) closes.  Stopping: SIGTERM to every node, SIGKILL after a grace
period.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from array import array
from base64 import b64decode
from pathlib import Path

from .cluster import Member, Target
from .options import BenchOptions
from .procstat import CpuMeter, signal_me_when_parent_dies
from .runner import Benchmark, _fmt
from .stats import summarize_latencies

NODE_SCRIPT = Path(__file__).resolve().with_name("pysyncobj_node.py")
BIND_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 10.0
STOP_GRACE_S = 10.0
POLL_S = 0.05
PROGRESS_S = 0.25
NOT_DURABLE = ("PySyncObj keeps its Raft log in memory and never fsyncs (not durable), and its load "
               "generator runs inside the leader's process: a reference point, not a like-for-like comparison")


class PySyncObjError(RuntimeError):
    """The PySyncObj cluster could not be started or driven; the message says what was seen."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    signal_me_when_parent_dies(signal.SIGTERM)


class NodeProcess:
    """One `pysyncobj_node.py` process and its line protocol (see that file)."""

    def __init__(self, name: str, python: str, address: str, partners: list[str], log_path: str) -> None:
        self.name = name
        self.python = python
        self.address = address
        self.partners = partners
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._next_id = 0

    def start(self) -> None:
        cmd = [self.python, str(NODE_SCRIPT), "--self", self.address]
        for partner in self.partners:
            cmd += ["--partner", partner]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         text=True, bufsize=1, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True,
                         name=f"pysyncobj-{self.name}-out").start()

    def _pump(self, stream) -> None:
        for line in stream:
            try:
                self._lines.put(json.loads(line))
            except ValueError:
                self._lines.put({"event": "garbled", "line": line.rstrip()[:200]})
        self._lines.put(None)  # end of output: the process is exiting

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _next(self, deadline: float, what: str) -> dict:
        try:
            message = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise PySyncObjError(f"PySyncObj node {self.name} did not answer {what} in time") from None
        if message is None:
            self._lines.put(None)  # stays at the end for later readers
            raise PySyncObjError(self.exit_report())
        return message

    def wait_bound(self, deadline: float) -> None:
        message = self._next(deadline, "whether it bound its port")
        if message.get("event") != "bound":
            raise PySyncObjError(f"PySyncObj node {self.name} on {self.address} did not start: "
                                 f"{message.get('error') or message}\n{self.output()}".rstrip())

    def request(self, cmd: dict, timeout: float = REQUEST_TIMEOUT_S) -> dict:
        self._next_id += 1
        cmd = {**cmd, "id": self._next_id}
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise PySyncObjError(self.exit_report()) from None
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next(deadline, repr(cmd["cmd"]))
            if answer.get("id") != cmd["id"]:
                continue  # the late answer to an earlier request that timed out
            if "error" in answer:
                raise PySyncObjError(f"PySyncObj node {self.name}: {cmd['cmd']} failed: {answer['error']}")
            return answer

    def exit_report(self) -> str:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                pass
        state = "closed its output" if code is None else f"exited with code {code}"
        return f"PySyncObj node {self.name} on {self.address} {state}:\n{self.output()}".rstrip()

    def output(self, tail: int = 2000) -> str:
        try:
            return Path(self.log_path).read_bytes().decode("utf-8", "replace")[-tail:]
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        if self.running:
            self.proc.send_signal(signum)

    def stop(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        return code


class PySyncObjCluster:
    """`nodes` PySyncObj processes on free loopback ports, described as a Target."""

    def __init__(self, python: str, nodes: int = 3, keep_data: bool = False) -> None:
        self.python = python
        self.size = nodes
        self.keep_data = keep_data
        self.base_dir = tempfile.mkdtemp(prefix="abcd-bench-pysyncobj-")
        self.nodes: list[NodeProcess] = []

    def __enter__(self) -> "PySyncObjCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Target:
        addresses = [f"127.0.0.1:{free_port()}" for _ in range(self.size)]
        for i, address in enumerate(addresses):
            name = f"n{i + 1}"
            self.nodes.append(NodeProcess(name, self.python, address, [a for a in addresses if a != address],
                                          os.path.join(self.base_dir, f"{name}.log")))
        for node in self.nodes:
            node.start()
        deadline = time.monotonic() + BIND_TIMEOUT_S
        for node in self.nodes:
            node.wait_bound(deadline)
        return self.target(READY_TIMEOUT_S)

    def node(self, name: str) -> NodeProcess:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def statuses(self) -> list[dict]:
        return [node.request({"cmd": "status"}) for node in self.nodes]

    def agreed_leader(self, statuses: list[dict]) -> NodeProcess | None:
        """The node every node names as leader, once all are connected and caught up."""
        leaders = {s["leader"] for s in statuses}
        if len(leaders) != 1 or None in leaders:
            return None
        (address,) = leaders
        if any(s["connected"] != self.size - 1 or not s["ready"] for s in statuses):
            return None
        for node, s in zip(self.nodes, statuses):
            if node.address == address and s["state"] == "leader" and s["quorum"]:
                return node
        return None

    def target(self, timeout: float = READY_TIMEOUT_S) -> Target:
        """Members with the leader marked; waits (up to `timeout`) until all agree on one."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.statuses()
            leader = self.agreed_leader(statuses)
            if leader is not None:
                return Target("pysyncobj", tuple(Member(n.name, n.address, n is leader, n.pid) for n in self.nodes))
            if time.monotonic() >= deadline:
                seen = ", ".join(f"{n.name}: {s['state']}, leader {s['leader']}, {s['connected']} connected"
                                 for n, s in zip(self.nodes, statuses))
                raise PySyncObjError(f"the PySyncObj nodes did not agree on a leader within {timeout:g}s ({seen})")
            time.sleep(POLL_S)

    def stop(self) -> None:
        """SIGTERM every node at once, SIGKILL what outlives the grace period; remove the logs."""
        for node in self.nodes:
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for node in self.nodes:
            node.stop(max(0.1, deadline - time.monotonic()))
        if not self.keep_data:
            shutil.rmtree(self.base_dir, ignore_errors=True)


class PySyncObjBenchmark(Benchmark):
    """The same series, rows and repetitions as Benchmark, with the load generated
    inside the leader's process instead of by client processes."""

    def __init__(self, opts: BenchOptions, cluster: PySyncObjCluster, progress) -> None:
        super().__init__(opts, cluster.target, progress)
        self.cluster = cluster

    def run(self) -> None:
        opts = self.opts
        for rep in range(1, opts.reps + 1):
            for c in opts.concurrency:
                target = self.target = self.describe()
                self.rows[c].append(self._run_once(target, c, rep))

    def _run_once(self, target: Target, c: int, rep: int) -> dict:
        opts = self.opts
        what = f"{opts.label} c={c} rep {rep}/{opts.reps}"
        leader = self.cluster.node(target.leader.name)
        meter = CpuMeter({f"server:{n}": p for n, p in target.server_pids().items()})
        window = leader.request({"cmd": "run", "concurrency": c, "warmup": opts.warmup, "duration": opts.duration,
                                 "keys": opts.keys, "key_size": opts.key_size, "value_size": opts.value_size,
                                 "seed": rep * 100003 + c})
        self._wait_for(leader, window["measure_from"], what, "warm-up", window["start"])
        before = meter.snapshot()
        self._wait_for(leader, window["measure_until"], what, "measuring", window["measure_from"])
        cpu = CpuMeter.percent(before, meter.snapshot())
        self.progress.update(f"{what}: draining calls in flight")
        result = leader.request({"cmd": "collect", "timeout": DRAIN_TIMEOUT_S}, DRAIN_TIMEOUT_S + REQUEST_TIMEOUT_S)
        if result["in_flight"]:
            raise PySyncObjError(f"{what}: {result['in_flight']} calls were still unanswered "
                                 f"{DRAIN_TIMEOUT_S:g}s after the run (leader {leader.name})")
        latencies = array("d")
        latencies.frombytes(b64decode(result["latencies"]))
        errors = result["errors"]
        rep_result = summarize_latencies(latencies, opts.duration)
        rep_result.update(self._shape(target, cpu, sum(errors.values()), errors, result["error_samples"]))
        self.progress.done(f"{what}: {rep_result['ops_per_s']:,.0f} ops/s, p99 {_fmt(rep_result['p99_ms'])} ms"
                           + (f", {rep_result['errors']} errors" if rep_result["errors"] else ""))
        return rep_result

    def _wait_for(self, leader: NodeProcess, when: float, what: str, phase: str, since: float) -> None:
        """Until `when` (CLOCK_MONOTONIC), redrawing the progress line with the live rate."""
        last_count, last_time = leader.request({"cmd": "progress"})["completed"], time.monotonic()
        total = when - since
        while True:
            now = time.monotonic()
            if now >= when:
                return
            time.sleep(min(PROGRESS_S, when - now))
            count, now = leader.request({"cmd": "progress"})["completed"], time.monotonic()
            rate = (count - last_count) / (now - last_time) if now > last_time else 0.0
            last_count, last_time = count, now
            self.progress.update(f"{what}: {phase} {min(now - since, total):4.1f}/{total:g}s  {rate:,.0f} ops/s")
