"""Backup, restore and force-new-cluster on real processes (docs/operations.md):

* a backup saved with `abcdctl snapshot save` from a live cluster under writes restores
  (`python -m abcd restore`) into a new one-member cluster holding exactly the keys at
  the backup's revision, to which another member then joins; a damaged or truncated
  backup is refused with what is wrong;
* a member restarted with `--force-new-cluster` after the others are lost for good
  keeps every key it had applied, serves writes alone, takes a new member, and an old
  member started again with its old data is told it was removed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from abcd.localcluster import LocalCluster, NodeProcess, free_port, http, wait_for

pytestmark = pytest.mark.integration

ARGS = ["--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING"]


def ctl(endpoints: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "abcd.cli", "--endpoints", ",".join(endpoints), *args],
        capture_output=True, text=True, timeout=60,
    )


def abcd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "abcd", *args], capture_output=True, text=True, timeout=60)


def kvs(node, query: str = "") -> tuple[dict[str, str], int]:
    code, body = http(node.port, "GET", f"/v1/kv?prefix={query}", timeout=10)
    assert code == 200, body
    return {kv["key"]: kv["value"] for kv in body["kvs"]}, body["revision"]


def local_kvs(node) -> dict[str, str] | None:
    code, body = http(node.port, "GET", "/v1/kv?prefix=&serializable=true", timeout=10)
    return {kv["key"]: kv["value"] for kv in body["kvs"]} if code == 200 else None


class Writers:
    """Puts to the cluster from threads until stopped: the backup is taken under writes."""

    def __init__(self, nodes) -> None:
        self.stop = threading.Event()
        self.acknowledged = 0
        self._threads = [threading.Thread(target=self._run, args=(w, nodes)) for w in range(3)]

    def _run(self, w: int, nodes) -> None:
        i = 0
        while not self.stop.is_set():
            node = nodes[i % len(nodes)]
            try:
                code, _ = http(node.port, "PUT", f"/v1/kv/w{w}/{i % 50:02}", {"value": f"{w}-{i}"}, timeout=10)
            except OSError:
                code = 0
            if code == 200:
                self.acknowledged += 1
            i += 1

    def __enter__(self) -> "Writers":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(30)


def test_a_backup_taken_under_writes_restores_exactly_the_keys_at_its_revision(tmp_path):
    backup = os.fspath(tmp_path / "backup.abcd")
    for sub in ("old", "new"):
        os.makedirs(tmp_path / sub)
    with LocalCluster(os.fspath(tmp_path / "old"), 3, args=ARGS) as cluster:
        cluster.wait_ready()
        with Writers(cluster.nodes) as writers:
            wait_for(lambda: writers.acknowledged > 100, "writes to flow")
            saved = ctl(cluster.endpoints, "--json", "snapshot", "save", backup)
            assert saved.returncode == 0, saved.stderr
            before = writers.acknowledged
            wait_for(lambda: writers.acknowledged > before + 50, "writes to go on after the backup")

        info = json.loads(saved.stdout)
        assert info["revision"] > 100 and info["index"] >= info["revision"] and info["bytes"] > 0
        leader = cluster.wait_ready()
        # The cluster still has the history at the backup's revision: what it held then.
        code, body = http(leader.port, "GET", f"/v1/kv?prefix=&revision={info['revision']}")
        assert code == 200
        expected = {kv["key"]: kv["value"] for kv in body["kvs"]}
        now, revision_now = kvs(leader)
        assert revision_now > info["revision"] and now != expected  # writes went on after it
        assert len(expected) == info["keys"]
        old_cluster_id = leader.status()["cluster_id"]

    status = ctl(["127.0.0.1:1"], "snapshot", "status", backup)  # offline: no member needed
    assert status.returncode == 0, status.stderr
    assert f"revision {info['revision']}" in status.stdout and f"{info['keys']} keys" in status.stdout
    assert info["sha256"] in status.stdout and "intact" in status.stdout

    # Restore into a new cluster of one, and start it.
    port = free_port()
    data_dir = os.fspath(tmp_path / "new" / "r1")
    restored = abcd("restore", backup, "--data-dir", data_dir, "--name", "r1", "--advertise", f"127.0.0.1:{port}")
    assert restored.returncode == 0, restored.stderr
    assert f"revision {info['revision']}" in restored.stdout
    node = NodeProcess(port, data_dir, ["--name", "r1", *ARGS]).start()
    try:
        wait_for(lambda: (node.status() or {}).get("role") == "leader", "the restored member to lead", 60)
        held, revision = kvs(node)
        assert held == expected and revision == info["revision"]
        status = node.status()
        assert status["cluster_id"] != old_cluster_id and [m["id"] for m in status["members"]] == [1]
        # The new cluster takes writes, and a new member joins it and gets everything.
        code, body = http(port, "PUT", "/v1/kv/after-restore", {"value": "yes"})
        assert code == 200 and body["revision"] == info["revision"] + 1
        joiner = NodeProcess(free_port(), os.fspath(tmp_path / "new" / "r2"), ["--name", "r2", *ARGS])
        joiner.start(join=node.address)
        try:
            wait_for(lambda: local_kvs(joiner) == expected | {"after-restore": "yes"}, "the joiner to catch up", 60)
        finally:
            joiner.kill()
        # Restoring into a data dir that is not empty is refused.
        again = abcd("restore", backup, "--data-dir", data_dir, "--name", "r1", "--advertise", f"127.0.0.1:{port}")
        assert again.returncode == 1 and "is not empty" in again.stderr
    finally:
        node.kill()


def test_a_damaged_or_truncated_backup_is_refused_saying_what_is_wrong(tmp_path):
    backup = os.fspath(tmp_path / "backup.abcd")
    os.makedirs(tmp_path / "c")
    with LocalCluster(os.fspath(tmp_path / "c"), 1, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        for i in range(20):
            http(leader.port, "PUT", f"/v1/kv/k{i}", {"value": "v" * 50})
        assert ctl(cluster.endpoints, "snapshot", "save", backup).returncode == 0
    data = open(backup, "rb").read()
    truncated, damaged, foreign = (os.fspath(tmp_path / name) for name in ("truncated", "damaged", "foreign"))
    with open(truncated, "wb") as f:
        f.write(data[: len(data) - 100])
    with open(damaged, "wb") as f:
        f.write(data[:-10] + bytes(b ^ 0xFF for b in data[-10:]))
    with open(foreign, "wb") as f:
        f.write(b"PK\x03\x04 not a backup at all\n")
    for path, reason in (
        (truncated, "is truncated: it holds"),
        (damaged, "is damaged: its SHA-256 is"),
        (foreign, "is not a usable backup: it does not start with an abcd backup header"),
    ):
        status = ctl(["127.0.0.1:1"], "snapshot", "status", path)
        assert status.returncode == 1 and reason in status.stderr and path in status.stderr, status.stderr
        target = os.fspath(tmp_path / f"restored-{os.path.basename(path)}")
        restored = abcd("restore", path, "--data-dir", target, "--name", "r", "--advertise", "127.0.0.1:9")
        assert restored.returncode == 1 and reason in restored.stderr, restored.stderr
        assert not os.path.exists(target) or not os.listdir(target)


def test_force_new_cluster_keeps_every_key_the_survivor_applied_and_others_join_it(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        for i in range(200):
            assert http(leader.port, "PUT", f"/v1/kv/k{i:03}", {"value": f"v{i}"})[0] == 200
        survivor = next(n for n in cluster.nodes if n is not leader)
        lost = [n for n in cluster.nodes if n is not survivor]
        wait_for(lambda: len(local_kvs(survivor) or {}) == 200, "the survivor to apply every write")
        for node in lost:
            node.kill()  # lost for good
        # No quorum: a write cannot commit.
        code, _ = http(survivor.port, "PUT", "/v1/kv/no-quorum", {"value": "x"}, timeout=15)
        assert code in (503, 504)
        applied = local_kvs(survivor)
        old_cluster_id = survivor.status()["cluster_id"]
        survivor.kill()

        survivor.args = [*survivor.args, "--force-new-cluster"]
        survivor.start()
        wait_for(lambda: (survivor.status() or {}).get("role") == "leader", "the survivor to lead alone", 60)
        survivor.args.remove("--force-new-cluster")
        held, _ = kvs(survivor)
        # Every key it had applied (and the uncommitted write it held in its log, if any).
        assert {k: v for k, v in held.items() if k != "no-quorum"} == applied
        status = survivor.status()
        assert status["cluster_id"] == old_cluster_id and [m["id"] for m in status["members"]] == [status["id"]]
        assert any(name.startswith("before-force-new-cluster-") for name in os.listdir(survivor.data_dir))
        assert http(survivor.port, "PUT", "/v1/kv/alone", {"value": "ok"})[0] == 200

        # Restarted without the flag, it is the same one-member cluster.
        assert survivor.stop() == 0
        survivor.start()
        wait_for(lambda: (survivor.status() or {}).get("role") == "leader", "the survivor to restart", 60)
        assert kvs(survivor)[0]["alone"] == "ok"

        # A lost member started again with its old data is told it was removed.
        old = lost[0]
        old.start()
        assert old.proc.wait(60) == 0
        assert "was removed" in old.output()

        # A new member joins and gets everything.
        newcomer = cluster.new_node(join=survivor.address)
        expected = kvs(survivor)[0]
        wait_for(lambda: local_kvs(newcomer) == expected, "the new member to catch up", 60)
        wait_for(lambda: len((survivor.status() or {}).get("members", [])) == 2, "two members")
