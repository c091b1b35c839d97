"""The system under test: a fresh local abcd cluster, or members that already run.

A local cluster is N `python -m abcd` processes on free loopback ports with data dirs
in a temporary directory (fsync is always on in abcd).  Node 1 bootstraps; the others
join through it.  It is ready when every member is a voter and every node names the
same leader (GET /v1/members and /v1/status).

No orphans: each node runs in its own session (a terminal Ctrl-C reaches only this
tool, which then stops the nodes in order with SIGTERM, then SIGKILL after a grace
period) and asks the kernel for SIGTERM should this tool die without cleaning up.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .procstat import pids_listening_on, signal_me_when_parent_dies

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0


class ClusterError(RuntimeError):
    """The cluster could not be started or reached; the message says what was seen."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    address: str  # host:port clients use
    leader: bool
    pid: int | None  # known for local processes


@dataclass(frozen=True, slots=True)
class Target:
    system: str  # "abcd" | "etcd"
    members: tuple[Member, ...]

    @property
    def leader(self) -> Member:
        for m in self.members:
            if m.leader:
                return m
        raise ClusterError("no member is the leader")

    def server_pids(self) -> dict[str, int]:
        return {m.name: m.pid for m in self.members if m.pid is not None}


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 2.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.loads(reply.read())


def free_ports(count: int) -> list[int]:
    """Ports free right now (all held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: own session, and SIGTERM if this tool dies."""
    os.setsid()
    signal_me_when_parent_dies(signal.SIGTERM)


class LocalCluster:
    def __init__(self, nodes: int, keep_data: bool = False) -> None:
        self.nodes = nodes
        self.keep_data = keep_data
        self.base_dir = tempfile.mkdtemp(prefix="abcd-bench-")
        self.ports = free_ports(nodes)
        self.names = [f"n{i + 1}" for i in range(nodes)]
        self.procs: list[subprocess.Popen] = []
        self._stderr = []

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, i: int, join: str | None) -> None:
        cmd = [sys.executable, "-m", "abcd", str(self.ports[i]), "--name", self.names[i],
               "--data-dir", os.path.join(self.base_dir, self.names[i]), "--log-level", "WARNING"]
        if join:
            cmd += ["--join", join]
        env = dict(os.environ)
        if (REPO_ROOT / "abcd" / "__init__.py").exists():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        stderr = open(os.path.join(self.base_dir, f"{self.names[i]}.stderr"), "wb")
        self._stderr.append(stderr)
        self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=stderr, env=env, cwd=self.base_dir,
                                           preexec_fn=_die_with_parent))

    def start(self, timeout: float = READY_TIMEOUT_S) -> Target:
        deadline = time.monotonic() + timeout
        first = f"127.0.0.1:{self.ports[0]}"
        self._spawn(0, None)
        self._wait(deadline, lambda: self._healthy(first), f"node {self.names[0]} to bootstrap")
        for i in range(1, self.nodes):
            self._spawn(i, first)
        self._wait(deadline, self._all_voters_agree_on_leader, f"all {self.nodes} members to be voters with one leader")
        return self.target()

    def target(self) -> Target:
        described = describe_abcd([f"127.0.0.1:{p}" for p in self.ports], find_pids=False)
        pid_by_address = {f"127.0.0.1:{port}": proc.pid for port, proc in zip(self.ports, self.procs)}
        return Target("abcd", tuple(Member(m.name, m.address, m.leader, pid_by_address.get(m.address))
                                    for m in described.members))

    def _healthy(self, address: str) -> bool:
        try:
            http_json("GET", f"http://{address}/healthz")
            return True
        except (OSError, ValueError):
            return False

    def _all_voters_agree_on_leader(self) -> bool:
        try:
            members = http_json("GET", f"http://127.0.0.1:{self.ports[0]}/v1/members")["members"]
            if len(members) != self.nodes or not all(m["voter"] for m in members):
                return False
            leaders = [m["id"] for m in members if m["leader"]]
            if len(leaders) != 1:
                return False
            for port in self.ports:
                if http_json("GET", f"http://127.0.0.1:{port}/v1/status").get("leader") != leaders[0]:
                    return False
            return True
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def _wait(self, deadline: float, condition, what: str) -> None:
        while time.monotonic() < deadline:
            for name, proc in zip(self.names, self.procs):
                if proc.poll() is not None:
                    raise ClusterError(f"node {name} exited with code {proc.returncode} while waiting for {what}"
                                       f"{self._stderr_tail(name)}")
            if condition():
                return
            time.sleep(0.1)
        state = ""
        try:
            state = f"; members: {http_json('GET', f'http://127.0.0.1:{self.ports[0]}/v1/members')['members']}"
        except (OSError, ValueError, KeyError):
            pass
        raise ClusterError(f"timed out waiting for {what}{state}{self._stderr_tail(self.names[-1])}")

    def _stderr_tail(self, name: str) -> str:
        try:
            text = Path(self.base_dir, f"{name}.stderr").read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"\n--- {name} stderr (last lines) ---\n" + "\n".join(text.splitlines()[-15:]) if text else ""

    def stop(self) -> None:
        """SIGTERM every node (they flush and exit), SIGKILL stragglers; remove the data."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self._stderr:
            f.close()
        self._stderr = []
        if not self.keep_data:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def describe_abcd(endpoints: list[str], find_pids: bool = True) -> Target:
    """Members of a running abcd cluster, leader marked, reached through any endpoint."""
    errors = []
    for endpoint in endpoints:
        try:
            members = http_json("GET", f"http://{endpoint}/v1/members")["members"]
            break
        except (OSError, ValueError, KeyError) as e:
            errors.append(f"{endpoint}: {e}")
    else:
        raise ClusterError("no abcd endpoint answered GET /v1/members: " + "; ".join(errors))
    if not any(m.get("leader") for m in members):
        raise ClusterError(f"the abcd cluster has no leader right now: {members}")
    pids = _local_pids([m["address"] for m in members]) if find_pids else {}
    return Target("abcd", tuple(Member(m.get("name") or str(m["id"]), m["address"], bool(m["leader"]),
                                       pids.get(m["address"])) for m in members))


def describe_etcd(endpoints: list[str]) -> Target:
    """Members of a running etcd cluster through its v3 JSON gateway, leader marked."""
    errors = []
    for endpoint in endpoints:
        try:
            listed = http_json("POST", f"http://{endpoint}/v3/cluster/member/list", {})["members"]
            break
        except (OSError, ValueError, KeyError) as e:
            errors.append(f"{endpoint}: {e}")
    else:
        raise ClusterError("no etcd endpoint answered POST /v3/cluster/member/list: " + "; ".join(errors))
    members = []
    leader_id = None
    for m in listed:
        address = m["clientURLs"][0].split("://", 1)[-1]
        try:
            status = http_json("POST", f"http://{address}/v3/maintenance/status", {})
            leader_id = status.get("leader", leader_id)
        except (OSError, ValueError) as e:
            raise ClusterError(f"etcd member {m.get('name')} at {address} did not answer its status: {e}") from None
        members.append((m.get("name") or m["ID"], address, m["ID"]))
    if leader_id is None:
        raise ClusterError("the etcd cluster has no leader right now")
    pids = _local_pids([address for _, address, _ in members])
    return Target("etcd", tuple(Member(name, address, str(mid) == str(leader_id), pids.get(address))
                                for name, address, mid in members))


def _local_pids(addresses: list[str]) -> dict[str, int]:
    ports = {int(a.rsplit(":", 1)[1]): a for a in addresses if a.rsplit(":", 1)[0] in ("127.0.0.1", "localhost")}
    return {ports[port]: pid for port, pid in pids_listening_on(list(ports)).items()}
