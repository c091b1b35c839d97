"""A fresh etcd cluster on this machine's loopback, for measurements beside abcd.

Each member is an `etcd` process with its own client and peer ports (free loopback
ports, as abcd's local clusters use) and its data dir in one temporary directory, removed
by `stop()`. fsync is on: nothing here turns it off (etcd always syncs its WAL).

The flags that decide what is measured are set to abcd's defaults, so that both systems
keep the same amount of log and files:

- `--snapshot-count 100000`: abcd's default, and etcd 3.4's; etcd keeps 5,000 entries
  behind a snapshot for slow followers (fixed in 3.4), as abcd's
  `--snapshot-catchup-entries` default does;
- `--max-snapshots 2 --max-wals 2`: abcd's defaults (etcd's are 5 and 5), so old WAL
  segments and snapshots are removed alike;
- `--heartbeat-interval 100 --election-timeout 1000`: abcd's defaults (and etcd's);
- `--quota-backend-bytes 8 GiB`: etcd's default quota is 2 GiB and raises a NOSPACE
  alarm (refusing puts) beyond it; 8 GiB, the largest etcd suggests, leaves room for
  millions of keys.  It is a limit, not a reservation;
- no auto-compaction, as abcd's default (distinct keys leave nothing to compact anyway);
- `--logger zap --log-level warn`: quiet, as abcd's nodes run with WARNING.

No orphans: each member runs in its own session (a terminal's Ctrl-C reaches only the
tool, which stops the members) and gets SIGTERM from the kernel should the tool die.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import uuid
from pathlib import Path

from .cluster import ClusterError, Target, describe_etcd, http_json, localcluster
from .procstat import signal_me_when_parent_dies

SNAPSHOT_COUNT = 100_000
MAX_SNAPSHOTS = 2
MAX_WALS = 2
HEARTBEAT_MS = 100
ELECTION_TIMEOUT_MS = 1000
QUOTA_BACKEND_BYTES = 8 * 2**30
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0


def _die_with_parent() -> None:
    signal_me_when_parent_dies(signal.SIGTERM)


class EtcdMember:
    def __init__(self, binary: str, name: str, base_dir: str, extra_args: list[str]) -> None:
        self.binary = binary
        self.name = name
        self.client_port = localcluster.free_port()
        self.peer_port = localcluster.free_port()
        self.data_dir = os.path.join(base_dir, name)
        self.output_path = self.data_dir + ".out"
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.added_at: float | None = None  # time.monotonic() of the accepted `member add`
        self._cluster_args: list[str] = []

    @property
    def address(self) -> str:
        """host:port of its client URL (and of the v3 JSON gateway)."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def command(self) -> list[str]:
        client_url = f"http://{self.address}"
        return [
            self.binary, "--name", self.name, "--data-dir", self.data_dir,
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            *self._cluster_args,
            "--snapshot-count", str(SNAPSHOT_COUNT), "--max-snapshots", str(MAX_SNAPSHOTS),
            "--max-wals", str(MAX_WALS), "--heartbeat-interval", str(HEARTBEAT_MS),
            "--election-timeout", str(ELECTION_TIMEOUT_MS), "--quota-backend-bytes", str(QUOTA_BACKEND_BYTES),
            "--logger", "zap", "--log-level", "warn",
            *self.extra_args,  # later flags win: e.g. another --snapshot-count
        ]

    def start(self, initial_cluster: str | None = None, state: str = "new", token: str = "") -> "EtcdMember":
        """The first start names the cluster; a restart on the same data dir reuses those
        flags (etcd ignores them once its data dir holds a WAL)."""
        if initial_cluster is not None:
            self._cluster_args = ["--initial-cluster", initial_cluster, "--initial-cluster-state", state,
                                  "--initial-cluster-token", token]
        with open(self.output_path, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running else None

    def status(self, timeout: float = 2.0) -> dict | None:
        """POST /v3/maintenance/status: this member's own revision, raft index, leader."""
        if not self.running:
            return None
        try:
            return http_json("POST", f"http://{self.address}/v3/maintenance/status", {}, timeout=timeout)
        except (OSError, ValueError):
            return None

    def revision(self) -> int | None:
        status = self.status()
        return None if status is None else int(status["header"].get("revision", 0))

    def kill(self) -> None:
        """kill -9: no flush, no goodbye."""
        if self.running:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        if self.proc is None:
            return
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def output(self, tail: int = 3000) -> str:
        try:
            return Path(self.output_path).read_bytes().decode("utf-8", "replace")[-tail:]
        except OSError:
            return ""


class EtcdCluster:
    """`nodes` etcd members started together (`--initial-cluster-state new`); members
    added later join with `member add` and `--initial-cluster-state existing`."""

    def __init__(self, nodes: int, binary: str = "etcd", extra_args: list[str] | None = None) -> None:
        if shutil.which(binary) is None:
            raise ClusterError(f"no etcd binary {binary!r} on PATH")
        self.binary = binary
        self.extra_args = list(extra_args or [])
        self.base_dir = tempfile.mkdtemp(prefix="abcd-scale-etcd-")
        self.token = f"scale-{uuid.uuid4().hex[:8]}"  # a fresh cluster id each time
        self.members = [EtcdMember(binary, f"m{i + 1}", self.base_dir, self.extra_args) for i in range(nodes)]

    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self) -> Target:
        initial = self._initial_cluster()
        for member in self.members:
            member.start(initial, "new", self.token)
        return self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> Target:
        """Every started member answers its status and they name one leader."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self._check_alive()
            running = [m for m in self.members if m.running]
            statuses = [m.status() for m in running]
            leaders = {s.get("leader") for s in statuses if s}
            if statuses and all(statuses) and len(leaders) == 1 and leaders.isdisjoint((None, "0")):
                try:
                    return describe_etcd([m.address for m in running])
                except ClusterError as e:
                    last = e
            else:
                last = statuses
            time.sleep(0.05)
        raise ClusterError(f"etcd was not ready after {timeout:.0f} s (last: {last!r})")

    def _check_alive(self) -> None:
        for member in self.members:
            if member.proc is not None and not member.running and member.proc.returncode != -signal.SIGKILL:
                raise ClusterError(f"etcd member {member.name} exited ({member.proc.returncode}):\n{member.output()}")

    def member(self, address: str) -> EtcdMember:
        return next(m for m in self.members if m.address == address)

    def kill_all(self) -> None:
        for member in self.members:
            member.kill()

    def start_all(self) -> None:
        """Start again every member on its data dir (after a kill)."""
        for member in self.members:
            member.start()

    def add_member(self, through: str) -> EtcdMember:
        """`member add` through the member at `through`, then start the new member with
        `--initial-cluster-state existing` and an empty data dir.  Its `added_at` is when
        the accepted `member add` was sent."""
        member = EtcdMember(self.binary, f"m{len(self.members) + 1}", self.base_dir, self.extra_args)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            member.added_at = time.monotonic()
            try:
                http_json("POST", f"http://{through}/v3/cluster/member/add", {"peerURLs": [member.peer_url]}, timeout=10)
                break
            except urllib.error.HTTPError as e:
                # etcd refuses a new voter until every member has been connected to the
                # leader for 5 s ("unhealthy cluster"), as right after a restart.
                answer = e.read().decode("utf-8", "replace")
                if e.code != 503 or "unhealthy" not in answer or time.monotonic() > deadline:
                    raise ClusterError(f"etcd member add through {through} answered {e.code}: {answer}") from None
            time.sleep(0.1)
        self.members.append(member)
        member.start(self._initial_cluster(), "existing", self.token)
        return member

    def stop(self) -> None:
        """SIGTERM every member, SIGKILL stragglers; remove the data dirs."""
        for member in self.members:
            if member.running:
                member.proc.send_signal(signal.SIGTERM)
        for member in self.members:
            member.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
