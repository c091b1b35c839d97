"""Client processes: started once per invocation, each runs its share of the load.

The main process stays free to sample CPU and draw the progress line; with several
processes the load generator is not limited to one core.  A run goes:
main sends each worker its task → worker connects and answers "ready" → main picks a
common start time (CLOCK_MONOTONIC is shared by all processes) and sends it → workers
load, measure, drain, and send back their latencies.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import signal
import time
from array import array
from dataclasses import dataclass, field

from .drivers import DriverError, HttpDriver, Recorder, SessionDriver, Window
from .procstat import signal_me_when_parent_dies
from .workload import Workload, WorkloadSpec

READY_TIMEOUT_S = 30.0
START_DELAY_S = 0.05


@dataclass(frozen=True, slots=True)
class WorkerTask:
    client: str  # "session" | "http" | "gateway"
    connections: tuple[tuple[str, int], ...]  # (endpoint, clients on it); http: one client each
    workload: WorkloadSpec
    warmup: float
    duration: float
    seed: int
    token: str | None = None  # abcd with auth on
    cacert: str | None = None  # the cluster speaks TLS: https/wss, trusting this CA


@dataclass(slots=True)
class WorkerResult:
    latencies: array = field(default_factory=lambda: array("d"))
    errors: dict = field(default_factory=dict)
    error_samples: list = field(default_factory=list)
    failure: str | None = None


class WorkerFailed(RuntimeError):
    pass


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # a cheaper load generator, when available
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# Blocked in the main process while it forks the workers (see WorkerPool).
_FORK_BLOCKED = {signal.SIGINT, signal.SIGTERM}


def _worker_main(conn, not_mine: list, progress, slot: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORK_BLOCKED)  # blocked across the fork
    signal_me_when_parent_dies(signal.SIGKILL)
    # Forked children inherit every pipe end open in the parent; holding the main
    # process's end of our own pipe would hide its death (recv() would never see EOF).
    for other in not_mine:
        other.close()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            result = loop.run_until_complete(_run_task(task, conn, progress, slot))
        except Exception as e:  # report, don't die: the main process explains it
            result = WorkerResult(failure=f"{type(e).__name__}: {e}")
        if result is not None:
            try:
                conn.send(result)
            except OSError:  # the main process is gone
                return


async def _run_task(task: WorkerTask, conn, progress, slot: int) -> WorkerResult | None:
    workload = Workload(task.workload, task.seed)
    recorder = Recorder(Window(0.0, 0.0, 0.0), progress, slot)
    if task.client == "session":
        drivers = [
            SessionDriver(ep, clients, workload, recorder, task.cacert, token=task.token) for ep, clients in task.connections
        ]
    else:
        api = "abcd" if task.client == "http" else "etcd"
        endpoints = [ep for ep, clients in task.connections for _ in range(clients)]
        drivers = [HttpDriver(api, endpoints, workload, recorder, task.cacert, token=task.token)]
    try:
        for d in drivers:
            await d.connect()
        conn.send("ready")
        start_at = await _receive(conn)
        if start_at is None:  # another worker failed: abandon this run
            return None
        recorder.window = Window(start_at, start_at + task.warmup, start_at + task.warmup + task.duration)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        await asyncio.gather(*(d.run() for d in drivers))
    finally:
        for d in drivers:
            await d.close()
    return WorkerResult(recorder.latencies, dict(recorder.errors), recorder.error_samples)


async def _receive(conn):
    # Polled rather than registered with loop.add_reader: uvloop's reader on a pipe
    # also owned by the Connection object broke the pipe for the next run.  The
    # start time is set START_DELAY_S ahead, so a millisecond of polling is harmless.
    while not conn.poll():
        await asyncio.sleep(0.001)
    return conn.recv()


class WorkerPool:
    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.progress = ctx.RawArray("q", count)
        pipes = [ctx.Pipe() for _ in range(count)]
        self._conns = [ours for ours, _ in pipes]
        self._procs = []
        # A Ctrl-C landing during a fork would be seen twice: Python notes a signal in a
        # flag and acts on it later, and a child forked in between inherits the flag and
        # raised KeyboardInterrupt inside the fork's own bookkeeping (a worker then hung,
        # and the tool with it).  Blocked, the signal waits for the parent alone.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_BLOCKED)
        try:
            for slot, (_, theirs) in enumerate(pipes):
                not_mine = [end for i, pair in enumerate(pipes) for end in pair if end is not theirs or i != slot]
                proc = ctx.Process(target=_worker_main, args=(theirs, not_mine, self.progress, slot), daemon=True,
                                   name=f"bench-client-{slot + 1}")
                proc.start()
                self._procs.append(proc)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for _, theirs in pipes:
            theirs.close()
        self._busy: list[int] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def completed(self) -> int:
        return sum(self.progress)

    def start(self, tasks: list[WorkerTask | None]) -> float:
        """Hand out the tasks (None: that worker sits this run out); returns the start time."""
        if len(tasks) != len(self._conns):
            raise ValueError(f"{len(tasks)} tasks for {len(self._conns)} workers")
        for i in range(len(self.progress)):
            self.progress[i] = 0
        self._busy = [i for i, t in enumerate(tasks) if t is not None]
        for i in self._busy:
            self._conns[i].send(tasks[i])
        failures = []
        for i in self._busy:
            reply = self._recv(i, READY_TIMEOUT_S, "to connect")
            if reply != "ready":
                failures.append(f"client process {i + 1}: {reply.failure}")
        if failures:
            for i in self._busy:
                self._conns[i].send(None)
            self._busy = []
            raise WorkerFailed("; ".join(failures))
        start_at = time.monotonic() + START_DELAY_S
        for i in self._busy:
            self._conns[i].send(start_at)
        return start_at

    def poll(self, timeout: float) -> bool:
        """Wait up to `timeout` for any result; True when every busy worker has answered."""
        pending = [self._conns[i] for i in self._busy if not self._conns[i].poll()]
        if pending:
            multiprocessing.connection.wait(pending, timeout)
        return all(self._conns[i].poll() for i in self._busy)

    def results(self, timeout: float) -> list[WorkerResult]:
        out = [self._recv(i, timeout, "to finish") for i in self._busy]
        self._busy = []
        failures = [f"client process {n + 1}: {r.failure}" for n, r in enumerate(out) if r.failure]
        if failures:
            raise WorkerFailed("; ".join(failures))
        return out

    def _recv(self, i: int, timeout: float, what: str):
        if not self._conns[i].poll(timeout):
            raise WorkerFailed(f"client process {i + 1} did not manage {what} within {timeout:.0f}s")
        try:
            return self._conns[i].recv()
        except EOFError:
            raise WorkerFailed(f"client process {i + 1} exited (code {self._procs[i].exitcode})") from None

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()


__all__ = ["WorkerPool", "WorkerTask", "WorkerResult", "WorkerFailed", "DriverError"]
