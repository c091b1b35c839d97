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
import ssl
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .procstat import pids_listening_on, signal_me_when_parent_dies

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path and (REPO_ROOT / "abcd" / "__init__.py").exists():
    sys.path.insert(0, str(REPO_ROOT))

from abcd import localcluster  # noqa: E402
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


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 2.0, cacert: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=cacert) if cacert else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
        return json.loads(reply.read())


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM if this tool dies without cleaning up."""
    signal_me_when_parent_dies(signal.SIGTERM)


class LocalCluster:
    """A fresh cluster of `python -m abcd` processes (abcd.localcluster), described as a Target."""

    def __init__(self, nodes: int, keep_data: bool = False, tls: bool = False, node_args: list[str] | None = None) -> None:
        self.nodes = nodes
        self.keep_data = keep_data
        self.base_dir = tempfile.mkdtemp(prefix="abcd-bench-")
        args = ["--log-level", "WARNING", *(node_args or [])]
        self.cacert = None
        context = None
        if tls:  # one CA for the run; peers with mutual TLS
            tls_args, self.cacert = localcluster.tls_cluster_files(os.path.join(self.base_dir, "tls"))
            args += tls_args
            context = ssl.create_default_context(cafile=self.cacert)
        self._cluster = localcluster.LocalCluster(
            self.base_dir, nodes, args=args, ready_timeout=READY_TIMEOUT_S,
            preexec=_die_with_parent, ssl_context=context,
        )

    @property
    def processes(self) -> localcluster.LocalCluster:
        """The node processes themselves, for tools that kill, restart or add members."""
        return self._cluster

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Target:
        try:
            self._cluster.start()
        except localcluster.ClusterError as error:
            raise ClusterError(str(error)) from None
        return self.target()

    def target(self) -> Target:
        running = self._cluster.endpoints
        described = describe_abcd(running, find_pids=False, cacert=self.cacert)
        pid_by_address = {n.address: n.proc.pid for n in self._cluster.nodes if n.running}
        return Target("abcd", tuple(Member(m.name, m.address, m.leader, pid_by_address.get(m.address))
                                    for m in described.members))

    def stop(self) -> None:
        """SIGTERM every node (they flush and exit), SIGKILL stragglers; remove the data."""
        self._cluster.stop_all(STOP_GRACE_S)
        if not self.keep_data:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def describe_abcd(endpoints: list[str], find_pids: bool = True, cacert: str | None = None) -> Target:
    """Members of a running abcd cluster, leader marked, reached through any endpoint (https with `cacert`)."""
    errors = []
    scheme = "https" if cacert else "http"
    for endpoint in endpoints:
        try:
            members = http_json("GET", f"{scheme}://{endpoint}/v1/members", cacert=cacert)["members"]
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
