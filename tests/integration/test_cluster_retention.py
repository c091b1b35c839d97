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
from abcd.localcluster import LocalCluster, http, wait_for

pytestmark = pytest.mark.integration

MAX_SNAPSHOTS = 2
MAX_WALS = 3
SEGMENT_BYTES = 48 * 1024  # about 230 entries of these writes
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


async def overwrite_in_rounds(endpoints: list[str], after_round) -> dict[str, str]:
    """ROUNDS x WRITES_PER_ROUND acknowledged puts over the same KEYS keys, by 4 clients
    kept for the whole run (each new client would add its own entry to the cluster's
    table of recent requests, which snapshots hold too); `after_round()` after each
    round.  Returns the last value of every key."""
    clients = [Client(endpoints, timeout=20.0) for _ in range(4)]
    last: dict[str, str] = {}

    async def writer(client: Client, w: int, round_: int) -> None:
        # Keys i, i+4, ... are this writer's own, written in order: the last value of
        # each key is known whatever the interleaving.
        for i in range(w, WRITES_PER_ROUND, 4):
            await client.put(f"key-{i % KEYS:02}", f"{round_}-{i}-" + "x" * 100)

    try:
        for round_ in range(ROUNDS):
            await asyncio.gather(*(writer(c, w, round_) for w, c in enumerate(clients)))
            for i in range(WRITES_PER_ROUND):
                last[f"key-{i % KEYS:02}"] = f"{round_}-{i}-" + "x" * 100
            await asyncio.to_thread(after_round)
    finally:
        for client in clients:
            await client.close()
    return last


def test_old_files_beyond_the_retention_are_removed_disk_stays_flat_and_a_restart_recovers(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 1, args=ARGS) as cluster:
        node = cluster.wait_ready()
        sizes = []

        def after_round() -> None:
            # A new snapshot file is durable before the older ones are pruned, and the
            # WAL is compacted after that: wait for the last snapshot's clean-up. A
            # segment no snapshot covers yet is never removed (the one being written,
            # and one more when the last snapshot's catch-up entries span two).
            wait_for(
                lambda: 1 <= len(files(node, "snap", ".snap")) <= MAX_SNAPSHOTS
                and len(files(node, "wal", ".wal")) <= MAX_WALS + 1,
                f"at most {MAX_SNAPSHOTS} snapshots and {MAX_WALS} + 1 segments",
                timeout=15,
            )
            sizes.append(disk_bytes(node))

        expected = asyncio.run(overwrite_in_rounds(cluster.endpoints, after_round))
        status = node.status()
        # Dozens of snapshots were taken and the WAL rolled far more often than it kept.
        assert status["snapshot_index"] > status["commit_index"] - 200
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
