"""The real processes the browser tests open pages on: `python -m abcd demo`, one node,
and the simulator (`python -m abcd.sim --record/--serve`); and `tools/kvclient.py`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from abcd.localcluster import ClusterError, free_port_run, http, wait_for

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict:
    # The code under test is this checkout's, in every child process too.
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class Server:
    """A child process that serves HTTP on 127.0.0.1:`port`, its output in `<folder>/<name>.out`."""

    def __init__(self, folder: Path, name: str, args: list[str], port: int) -> None:
        self.folder = Path(folder)
        self.port = port
        self.output_path = self.folder / f"{name}.out"
        self.args = args
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "Server":
        with open(self.output_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *self.args], cwd=self.folder, env=_env(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        return self

    def output(self, tail: int = 6000) -> str:
        try:
            return self.output_path.read_bytes().decode("utf-8", "replace")[-tail:]
        except OSError:
            return ""

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            raise ClusterError(f"python {' '.join(self.args)} exited with {self.proc.returncode}:\n{self.output()}")

    def get(self, path: str):
        self.check_running()
        return http(self.port, "GET", path, timeout=2)

    def wait_serving(self, path: str = "/", timeout: float = 60.0) -> None:
        wait_for(lambda: self.get(path)[0] == 200, f"{self.url.rstrip('/')}{path} to answer", timeout=timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a clean stop), SIGKILL if it does not end in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Demo(Server):
    """`python -m abcd demo --nodes N`: the dashboard on one port, the nodes on the next N."""

    def __init__(self, folder: Path, nodes: int = 3) -> None:
        first = free_port_run(nodes + 1)
        self.node_ports = list(range(first + 1, first + 1 + nodes))
        super().__init__(folder, "demo", [
            "-m", "abcd", "demo", "--nodes", str(nodes),
            "--base-port", str(self.node_ports[0]), "--dashboard-port", str(first),
        ], first)
        self.pids: set[int] = set()

    def members(self) -> list[dict]:
        """GET /demo/members: the supervised nodes, each with its port, pid and state."""
        status, body = self.get("/demo/members")
        assert status == 200, f"GET /demo/members answered {status}: {body}"
        self.pids.update(m["pid"] for m in body["members"] if m.get("pid"))
        return body["members"]

    def member(self, port: int) -> dict:
        return next(m for m in self.members() if m["port"] == port)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every node runs, is healthy, and all follow the same leader."""
        def ready() -> bool:
            members = self.members()
            if sorted(m["port"] for m in members) != self.node_ports or any(m["state"] != "running" for m in members):
                return False
            if any(http(p, "GET", "/healthz", timeout=1)[0] != 200 for p in self.node_ports):
                return False
            leaders = {self.node_status(p)["leader"] for p in self.node_ports}
            return len(leaders) == 1 and None not in leaders

        wait_for(ready, "the demo's nodes to run, be healthy and follow one leader", timeout=timeout, interval=0.2)

    def restore(self) -> None:
        """Undo what a test did: heal every node's faults, restart the members that do not run, wait until ready."""
        members = self.members()
        for member in members:  # faults live in a node's memory: a node that starts again has none
            if member["state"] == "running":
                status, body = http(member["port"], "DELETE", "/v1/admin/faults", timeout=5)
                assert status == 200, f"healing {member['port']} answered {status}: {body}"
        for member in members:
            if member["state"] != "running":
                status, body = http(self.port, "POST", f"/demo/members/{member['port']}/restart", timeout=30)
                assert status == 200, f"restarting {member['port']} answered {status}: {body}"
        self.wait_ready()

    def node_status(self, port: int) -> dict:
        status, body = http(port, "GET", "/v1/status", timeout=2)
        assert status == 200, f"GET /v1/status on {port} answered {status}: {body}"
        return body

    def stop(self, timeout: float = 30.0) -> int | None:
        try:
            self.members()  # the latest pids, in case a restarted node has a new one
        except (OSError, AssertionError, ClusterError):
            pass
        code = super().stop(timeout)
        # A demo that stops cleanly stops its nodes; one that did not must not leave them behind.
        for pid in self.pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        return code


def node(folder: Path, port: int, *args: str) -> Server:
    """One node bootstrapping its own cluster: `python -m abcd PORT` (no demo around it)."""
    return Server(folder, f"node-{port}", ["-m", "abcd", str(port), "--data-dir", str(Path(folder) / f"node-{port}"), *args], port)


def sim(folder: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`python -m abcd.sim ARGS` run to its end in `folder`."""
    done = subprocess.run(
        [sys.executable, "-m", "abcd.sim", *args], cwd=folder, env=_env(),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )
    return done


def record(folder: Path, name: str, *args: str) -> dict:
    """Record a simulator run into `folder/name` and return it, parsed."""
    path = Path(folder) / name
    done = sim(folder, *args, "--record", str(path))
    assert path.exists(), f"python -m abcd.sim {' '.join(args)} --record wrote nothing ({done.returncode}):\n{done.stdout}{done.stderr}"
    return json.loads(path.read_text())


def kvclient(port: int, *args: str) -> str:
    """tools/kvclient.py against one node; its standard output (a failure raises with its stderr)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "kvclient.py"), "--endpoints", f"127.0.0.1:{port}", *args],
        env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, f"kvclient {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return done.stdout
