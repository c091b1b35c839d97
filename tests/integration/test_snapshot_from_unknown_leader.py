"""A new member catches up by snapshot from a leader its snapshot does not know.

A snapshot carries the member table as of its own index.  When the leader joined after
that index, in the place (the address) of a member since removed, the new member's
table names the old member at that address and not the leader: it must still answer
the leader, at the address the leader's connection advertised, or the leader resends
the snapshot until a leader the snapshot knows takes over.  On real node processes.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from abcd.client import Client
from abcd.localcluster import LocalCluster, http, wait_for

from test_cluster_snapshots import metric, serves_all, status_of, write

pytestmark = pytest.mark.integration

SNAPSHOT_COUNT = 100
ARGS = [
    "--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING",
    # No entries kept behind a snapshot: a member that joins needs the snapshot.
    "--snapshot-count", str(SNAPSHOT_COUNT), "--snapshot-catchup-entries", "0",
]
# Far below the minute a leader change would take to end the stall (an election
# timeout of 200 ms); a snapshot of a hundred keys installs in well under a second.
CATCH_UP_DEADLINE = 20.0


def holds(node, expected: dict[str, str]) -> bool:
    """The node's own state (serializable) holds every key of `expected` with its value."""
    code, body = http(node.port, "GET", "/v1/kv?prefix=&serializable=true", timeout=5)
    return code == 200 and expected.items() <= {kv["key"]: kv["value"] for kv in body["kvs"]}.items()


def test_a_wiped_member_catches_up_from_a_leader_that_replaced_a_member_at_its_address(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        written = asyncio.run(write(cluster.endpoints, "k", SNAPSHOT_COUNT + 10))
        wait_for(lambda: status_of(leader, "snapshot_index") > 0, "the leader to take a snapshot")
        snapshot_index = status_of(leader, "snapshot_index")

        # Replace a follower by a new member at the same address; the snapshot
        # (taken before) still names the old member there.
        replaced = next(n for n in cluster.nodes if n is not leader)
        old_id = replaced.status()["id"]
        assert http(leader.port, "DELETE", f"/v1/members/{old_id}")[0] == 200
        assert replaced.proc.wait(30) is not None  # a removed member exits
        shutil.rmtree(replaced.data_dir)
        replaced.start(join=leader.address)
        cluster.wait_ready(30)
        new_id = replaced.status()["id"]
        assert new_id != old_id

        async def transfer() -> None:
            async with Client(cluster.endpoints, timeout=10.0) as client:
                await client.leader_transfer(new_id)

        asyncio.run(transfer())
        wait_for(lambda: (replaced.status() or {}).get("role") == "leader", "the new member to lead")
        # Its newest snapshot is still the one from before it joined.
        assert status_of(replaced, "snapshot_index") == snapshot_index

        # The wiped node joins, and catches up by snapshot while writes go on.
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            # Fewer writes than --snapshot-count: the leader's newest snapshot stays the old one.
            during = pool.submit(asyncio.run, write(cluster.endpoints, "during", SNAPSHOT_COUNT // 2, writers=2))
            newcomer = cluster.new_node(join=replaced.address)
            cluster.wait_node(newcomer, lambda n: holds(n, written), "the new member to catch up", CATCH_UP_DEADLINE)
            took = time.monotonic() - started
            written |= during.result(30)
        assert took < CATCH_UP_DEADLINE
        assert metric(newcomer, "abcd_snapshots_installed_total") >= 1

        # It keeps following: every acknowledged write, old and new, is readable from it.
        written |= asyncio.run(write(cluster.endpoints, "after", 20))
        cluster.wait_node(newcomer, lambda n: serves_all(n, written), "the new member to follow new writes", 10)
        cluster.wait_ready(30)
