"""Disk retention on a real node: old snapshots and WAL segments are removed once newer
snapshots cover them, keeping --max-snapshots and --max-wals; the disk stays flat
through a long run of overwrites of the same keys; a kill -9 and restart still
recovers every key.

Small segments (the hidden --wal-segment-bytes), a small --snapshot-count and the
leader's compaction of the history make a few thousand writes enough for dozens of
snapshots and segments.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from abcd.client import Client
from abcd.localcluster import LocalCluster, http

pytestmark = pytest.mark.integration

MAX_SNAPSHOTS = 2
MAX_WALS = 3
SEGMENT_BYTES = 16 * 1024
ARGS = [
    "--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING",
    "--snapshot-count", "100", "--snapshot-catchup-entries", "20",
    "--max-snapshots", str(MAX_SNAPSHOTS), "--max-wals", str(MAX_WALS), "--wal-segment-bytes", str(SEGMENT_BYTES),
    # Without it the history of the overwrites would grow the snapshots up to the
    # store's own bound (10,000 revisions): flat disk needs a bounded history.
    "--auto-compaction-mode", "revision", "--auto-compaction-retention", "200",
]
KEYS = 20
ROUNDS = 8
WRITES_PER_ROUND = 400


def files(node, sub: str, suffix: str) -> list[str]:
    path = os.path.join(node.data_dir, sub)
    return sorted(n for n in os.listdir(path) if n.endswith(suffix) and not n.startswith("."))


def disk_bytes(node) -> int:
    """What retention bounds: the WAL and the snapshots (node.log rotates on its own)."""
    total = 0
    for sub in ("wal", "snap"):
        for name in os.listdir(os.path.join(node.data_dir, sub)):
            total += os.path.getsize(os.path.join(node.data_dir, sub, name))
    return total


async def overwrite(endpoints: list[str], round_: int) -> dict[str, str]:
    """WRITES_PER_ROUND acknowledged puts over the same KEYS keys; their last values."""
    last: dict[str, str] = {}

    async def writer(w: int) -> None:
        async with Client(endpoints, timeout=20.0) as client:
            for i in range(w, WRITES_PER_ROUND, 4):
                key = f"key-{i % KEYS:02}"
                await client.put(key, f"{round_}-{i}-" + "x" * 100)

    await asyncio.gather(*(writer(w) for w in range(4)))
    for i in range(WRITES_PER_ROUND):
        last[f"key-{i % KEYS:02}"] = f"{round_}-{i}-" + "x" * 100
    return last


def test_old_files_beyond_the_retention_are_removed_disk_stays_flat_and_a_restart_recovers(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 1, args=ARGS) as cluster:
        node = cluster.wait_ready()
        sizes = []
        expected: dict[str, str] = {}
        for round_ in range(ROUNDS):
            # Each writer's puts are in order, and keys i, i+4, ... are its own: the last
            # value of each key is the one above, whatever the interleaving.
            expected = asyncio.run(overwrite(cluster.endpoints, round_))
            snaps, segments = files(node, "snap", ".snap"), files(node, "wal", ".wal")
            assert 1 <= len(snaps) <= MAX_SNAPSHOTS, snaps
            # Covered segments beyond MAX_WALS are removed at each snapshot; one more may
            # have rolled since the last one.
            assert len(segments) <= MAX_WALS + 1, segments
            sizes.append(disk_bytes(node))
        status = node.status()
        # Dozens of snapshots were taken and the WAL rolled far more often than it kept.
        assert status["snapshot_index"] > ROUNDS * WRITES_PER_ROUND - 200
        first_kept = int(files(node, "wal", ".wal")[0].split(".")[0])
        assert first_kept > ROUNDS * WRITES_PER_ROUND // 2
        # Flat: the second half of the run takes no more room than the first half did.
        assert max(sizes[ROUNDS // 2 :]) <= 1.25 * max(sizes[: ROUNDS // 2]), sizes

        node.kill()  # kill -9: no flush, no goodbye
        node.start()
        cluster.wait_ready()
        code, body = http(node.port, "GET", "/v1/kv?prefix=key-")
        assert code == 200 and {kv["key"]: kv["value"] for kv in body["kvs"]} == expected
        assert len(files(node, "snap", ".snap")) <= MAX_SNAPSHOTS
