"""Snapshots in a real cluster: taken and compacted as the nodes apply, a node restarted
from its own snapshot, a follower left behind the leader's compacted log caught up
through InstallSnapshot.

Small `--snapshot-count` and `--snapshot-catchup-entries` make a few hundred writes
enough for several snapshots and compactions.
"""
from __future__ import annotations

import asyncio
import os
import re
import urllib.request

import pytest

from abcd.client import Client
from abcd.localcluster import LocalCluster, http, wait_for

pytestmark = pytest.mark.integration

SNAPSHOT_COUNT = 50
CATCHUP = 20
ARGS = [
    "--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING",
    "--snapshot-count", str(SNAPSHOT_COUNT), "--snapshot-catchup-entries", str(CATCHUP), "--max-snapshots", "2",
]


async def write(endpoints: list[str], prefix: str, count: int, writers: int = 8) -> dict[str, str]:
    """`count` acknowledged puts through `writers` concurrent clients."""
    written = {f"{prefix}/{i:04}": f"value-{i}" for i in range(count)}
    keys = list(written)

    async def one(part: list[str]) -> None:
        async with Client(endpoints, timeout=20.0) as client:
            for key in part:
                await client.put(key, written[key])

    await asyncio.gather(*(one(keys[w::writers]) for w in range(writers)))
    return written


def serves_all(node, expected: dict[str, str]) -> bool:
    """The node's own state (serializable: no forwarding) holds every key and value."""
    code, body = http(node.port, "GET", "/v1/kv?prefix=&serializable=true", timeout=5)
    return code == 200 and {kv["key"]: kv["value"] for kv in body["kvs"]} == expected


def status_of(node, field: str) -> int:
    status = node.status()
    return status[field] if status else -1


def snap_files(node) -> list[str]:
    """The snapshot files (not a temp file being written)."""
    snap_dir = os.path.join(node.data_dir, "snap")
    names = os.listdir(snap_dir) if os.path.isdir(snap_dir) else []
    return sorted(name for name in names if name.endswith(".snap") and not name.startswith("."))


def metric(node, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(rf"^{name}\{{[^}}]*\}} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in the metrics of node {node.port}"
    return float(match.group(1))


def test_nodes_snapshot_and_compact_and_a_restarted_node_starts_from_its_snapshot(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        written = asyncio.run(write(cluster.endpoints, "k", 300))
        commit = status_of(leader, "commit_index")
        for node in cluster.nodes:
            # Each node snapshots what it applies and compacts its log behind: once the
            # last snapshot due at `commit` is taken, the log starts at most
            # SNAPSHOT_COUNT + CATCHUP entries behind it.
            cluster.wait_node(
                node, lambda n: status_of(n, "snapshot_index") > commit - SNAPSHOT_COUNT - CATCHUP,
                "every node to snapshot what it applied and compact behind it",
            )
            assert len(snap_files(node)) == 2, snap_files(node)  # older ones pruned (--max-snapshots 2)
            # A threshold crossed while a snapshot is being taken is skipped (the next
            # apply after it tries again), so a busy machine takes fewer than one per
            # SNAPSHOT_COUNT entries: what must hold is that it snapshots again and again.
            assert metric(node, "abcd_snapshots_taken_total") >= 2
            assert metric(node, "abcd_snapshot_seconds_total") > 0
            assert metric(node, "abcd_gc_pause_seconds_total") >= 0  # the process's watch is installed

        follower = next(n for n in cluster.nodes if n is not leader)
        snapshot_index = status_of(follower, "snapshot_index")
        assert follower.stop() == 0, follower.output()
        follower.start()
        cluster.wait_node(follower, lambda n: n.status() is not None, "the restarted node to serve")
        # It started from its snapshot: the log begins after it, not at 1.
        assert status_of(follower, "snapshot_index") >= snapshot_index > 0
        cluster.wait_node(follower, lambda n: serves_all(n, written), "the restarted node to serve every key")
        more = asyncio.run(write(cluster.endpoints, "after", 20))
        cluster.wait_node(follower, lambda n: serves_all(n, written | more), "it to follow new writes")

        # Both snapshot files damaged (its WAL was compacted on their strength): the node
        # refuses to start, naming the files, rather than start without committed data.
        assert follower.stop() == 0, follower.output()
        damaged = snap_files(follower)
        for name in damaged:
            with open(os.path.join(follower.data_dir, "snap", name), "r+b") as f:
                f.seek(100)
                f.write(b"\xff\xfe\xfd")
        follower.start()
        assert follower.proc.wait(30) == 1
        output = follower.output()
        assert "cannot start" in output and "no intact snapshot to start from" in output, output
        assert all(name in output for name in damaged) and "fails its CRC check" in output, output


def test_a_follower_behind_the_compacted_log_catches_up_through_install_snapshot(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        written = asyncio.run(write(cluster.endpoints, "k", 100))
        follower = next(n for n in cluster.nodes if n is not leader)
        cluster.wait_node(follower, lambda n: serves_all(n, written), "the follower to apply the first writes")
        behind = status_of(follower, "applied_index")
        assert follower.stop() == 0, follower.output()
        written |= asyncio.run(write(cluster.endpoints, "while-down", 200))
        # The leader compacted past everything the follower holds: AppendEntries cannot help.
        wait_for(lambda: status_of(leader, "snapshot_index") > behind, "the leader to compact past the follower")

        follower.start()
        cluster.wait_node(follower, lambda n: serves_all(n, written), "the follower to catch up")
        assert metric(leader, "abcd_snapshots_sent_total") >= 1
        assert metric(follower, "abcd_snapshots_installed_total") >= 1
        assert status_of(follower, "snapshot_index") > behind
        # Installed, then replicated normally: new writes reach it, and it restarts from it.
        written |= asyncio.run(write(cluster.endpoints, "after", 20))
        cluster.wait_node(follower, lambda n: serves_all(n, written), "the follower to follow new writes")
        assert follower.stop() == 0, follower.output()
        follower.start()
        cluster.wait_node(follower, lambda n: serves_all(n, written), "the follower to restart from the snapshot")

        # A new member gets the snapshot too (the leader's log no longer starts at 1),
        # and its member table comes from the snapshot: it is promoted, and all agree.
        newcomer = cluster.new_node(join=leader.address)
        cluster.wait_node(newcomer, lambda n: serves_all(n, written), "the new member to catch up")
        cluster.wait_ready()
        assert {m["name"] for m in newcomer.status()["members"]} == {"n1", "n2", "n3", "n4"}
