"""The cluster a chaos run breaks: real `python -m abcd` processes on loopback.

A thin layer over `abcd.localcluster` that speaks in members: node ids (learned from
`GET /v1/status`, and learned again after a membership change), the leader, the faults
API of each node (`POST/DELETE /v1/admin/faults`, nodes started with
`--enable-faults`), signals (kill -9, SIGSTOP, SIGCONT) and membership calls.

Everything here is synchronous (urllib, subprocess); the nemesis runs the HTTP calls in
a thread so the clients' event loop keeps running, and starts processes from the main
thread: a node asks the kernel to kill it when the thread that started it ends
(PR_SET_PDEATHSIG), so that nothing outlives this tool, even after a kill -9 of it.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import ssl
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path and (REPO_ROOT / "abcd" / "__init__.py").exists():
    sys.path.insert(0, str(REPO_ROOT))

from abcd.localcluster import ClusterError, LocalCluster, NodeProcess, http, tls_cluster_files, wait_for  # noqa: E402

PR_SET_PDEATHSIG = 1

__all__ = ["ChaosCluster", "ClusterError", "NodeProcess", "wait_for"]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when this tool ends without cleaning up."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class ChaosCluster:
    """`with ChaosCluster(root, nodes, node_args) as c:`; leaving kills every node."""

    def __init__(
        self, root: str, nodes: int, node_args: list[str], ready_timeout: float = 60.0, tls: bool = False
    ) -> None:
        # With tls: a CA made in the root, nodes with TLS and peer mutual TLS; `ssl` is
        # what clients use (abcd.client.Client(ssl=...)).
        self.ssl: ssl.SSLContext | None = None
        if tls:
            tls_args, cacert = tls_cluster_files(os.path.join(root, "tls"))
            node_args = [*node_args, *tls_args]
            self.ssl = ssl.create_default_context(cafile=cacert)
        self.local = LocalCluster(root, nodes, args=["--enable-faults", *node_args], ready_timeout=ready_timeout,
                                  preexec=_die_with_parent, ssl_context=self.ssl)
        self.paused: set[int] = set()  # ports of SIGSTOPped nodes
        self.faulted: set[int] = set()  # ports with network faults set
        self._ids: dict[int, int] = {}  # port -> node id

    def __enter__(self) -> "ChaosCluster":
        self.local.__enter__()
        self.refresh_ids()
        return self

    def __exit__(self, *exc) -> None:
        for node in self.nodes:
            node.signal(signal.SIGCONT)  # a stopped process dies of SIGKILL too; this is for tidiness
        self.local.kill_all()

    # ------------------------------------------------------------------ who is who

    @property
    def nodes(self) -> list[NodeProcess]:
        return self.local.nodes

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def refresh_ids(self) -> None:
        for node in self.nodes:
            status = node.status() if node.port not in self.paused else None
            if status is not None:
                self._ids[node.port] = status["id"]

    def id_of(self, node: NodeProcess) -> int:
        if node.port not in self._ids:
            self.refresh_ids()
        return self._ids[node.port]

    def name(self, node: NodeProcess) -> str:
        return f"{Path(node.data_dir).name} (id {self._ids.get(node.port, '?')})"

    def leader(self) -> NodeProcess | None:
        """The running, unpaused node that says it leads (the one with the highest term
        if two do, as an isolated old leader may for a while)."""
        best, best_term = None, -1
        for node in self.nodes:
            if node.running and node.port not in self.paused:
                status = node.status()
                if status and status["role"] == "leader" and status["term"] > best_term:
                    best, best_term = node, status["term"]
        return best

    def wait_leader(self, timeout: float, other_than: NodeProcess | None = None) -> NodeProcess:
        def found():
            leader = self.leader()
            return leader if leader is not None and leader is not other_than else None

        return wait_for(found, "a leader" + (f" other than {self.name(other_than)}" if other_than else ""), timeout)

    def wait_ready(self, timeout: float | None = None) -> NodeProcess:
        """Every node runs, is a voter, and names the same leader."""
        leader = self.local.wait_ready(timeout)
        self.refresh_ids()
        return leader

    # ------------------------------------------------------------------ processes

    def kill(self, node: NodeProcess) -> None:
        node.kill()
        self.paused.discard(node.port)
        self.faulted.discard(node.port)  # faults live in the process: a restart starts clean

    def start(self, node: NodeProcess, join: str | None = None) -> None:
        node.start(join)

    def pause(self, node: NodeProcess) -> None:
        node.signal(signal.SIGSTOP)
        self.paused.add(node.port)

    def resume(self, node: NodeProcess) -> None:
        node.signal(signal.SIGCONT)
        self.paused.discard(node.port)

    # ------------------------------------------------------------------ network faults

    def set_faults(
        self, node: NodeProcess, partition=(), delay_ms=0, jitter_ms=0, drop_rate=0.0, cut_to=()
    ) -> None:
        body = {"partition": sorted(partition), "cut_to": sorted(cut_to), "delay_ms": delay_ms,
                "jitter_ms": jitter_ms, "drop_rate": drop_rate}
        code, answer = http(node.port, "POST", "/v1/admin/faults", body, ssl_context=self.ssl)
        if code != 200:
            raise ClusterError(f"{self.name(node)} refused the faults {body}: {code} {answer}")
        self.faulted.add(node.port)

    def isolate(self, group: list[NodeProcess]) -> None:
        """Cut every link between `group` and the other members (both sides drop)."""
        inside = {self.id_of(n) for n in group}
        everyone = {self.id_of(n) for n in self.nodes if n.running}
        for node in self.nodes:
            if node.running:
                own = self.id_of(node)
                self.set_faults(node, partition=(everyone - inside) if own in inside else inside)

    def heal(self) -> None:
        """SIGCONT every paused node and clear every node's network faults."""
        for port in list(self.paused):
            self.resume(next(n for n in self.nodes if n.port == port))
        for node in self.nodes:
            if node.running and node.port in self.faulted:
                try:
                    http(node.port, "DELETE", "/v1/admin/faults", timeout=5, ssl_context=self.ssl)
                except OSError:
                    continue  # it may be stopping; its faults die with it
                self.faulted.discard(node.port)

    # ------------------------------------------------------------------ membership

    def members(self, via: NodeProcess) -> list[dict]:
        code, body = http(via.port, "GET", "/v1/members", timeout=5, ssl_context=self.ssl)
        if code != 200:
            raise ClusterError(f"GET /v1/members on {self.name(via)}: {code} {body}")
        return body["members"]

    def member_call(self, via: NodeProcess, method: str, path: str, body=None, timeout: float = 15.0) -> dict:
        code, answer = http(via.port, method, path, body, timeout=timeout, ssl_context=self.ssl)
        if code != 200:
            raise ClusterError(f"{method} {path} on {self.name(via)}: {code} {answer}")
        return answer

    def wipe(self, node: NodeProcess) -> None:
        """The member lost its disk: nothing of its data dir is left."""
        shutil.rmtree(node.data_dir, ignore_errors=True)
        self._ids.pop(node.port, None)
