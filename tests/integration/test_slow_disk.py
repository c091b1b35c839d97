"""A slow disk on one member, on real node processes: its fsyncs take 300 ms (the
hidden --disk-fault fsync-delay flag).  A follower's slow disk must not slow the
cluster's writes, since a quorum of fast disks commits them; a slow leader slows
writes, but they stay correct."""
from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from abcd.client import Client
from abcd.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.integration

FAST = ["--heartbeat-ms", "50", "--election-timeout-ms", "500", "--log-level", "WARNING"]
SLOW_FSYNC = ["--disk-fault", "fsync-delay:ms=300"]


async def timed_puts(endpoints, prefix: str, count: int) -> list[float]:
    """Seconds each of `count` puts took, one after another."""
    latencies = []
    async with Client(endpoints, timeout=10.0) as client:
        await client.put(f"{prefix}/warm-up", "x")  # the session is open before timing
        for i in range(count):
            started = time.perf_counter()
            await client.put(f"{prefix}/{i}", str(i))
            latencies.append(time.perf_counter() - started)
    return latencies


async def read_back(endpoint: str, prefix: str, count: int) -> list[str]:
    async with Client([endpoint], timeout=10.0) as client:
        return [key for i in range(count) if await client.get(key := f"{prefix}/{i}") is None]


def restart_with(cluster: LocalCluster, node, extra: list[str]) -> None:
    node.stop()
    node.args = [*node.args, *extra]
    node.start()
    cluster.wait_ready(30)


def test_a_slow_follower_disk_does_not_slow_writes_and_a_slow_leader_stays_correct(tmp_path):
    with LocalCluster(str(tmp_path), 3, args=FAST) as cluster:
        leader = cluster.wait_ready()
        fast = asyncio.run(timed_puts([leader.address], "fast", 60))

        follower = next(n for n in cluster.nodes if n is not leader)
        restart_with(cluster, follower, SLOW_FSYNC)
        leader = cluster.wait_ready()
        assert leader is not follower  # a graceful restart of a follower keeps the leader
        slow = asyncio.run(timed_puts([leader.address], "slow-follower", 60))

        fast_median, slow_median = statistics.median(fast), statistics.median(slow)
        print(f"median put: {1000 * fast_median:.1f} ms, with a follower's fsync at 300 ms: {1000 * slow_median:.1f} ms")
        # The leader commits with its own disk and the other fast follower: the 300 ms
        # fsync is never waited for.  (Generous bounds: the machine may be busy.)
        assert slow_median < max(3 * fast_median, fast_median + 0.05), (fast_median, slow_median)
        assert slow_median < 0.15, slow_median
        status = follower.status()
        assert status is not None  # the slow member kept up; its writes all arrive
        assert not asyncio.run(read_back(follower.address, "slow-follower", 60))

        # The slow member leads: every write waits for its fsync, and stays correct.
        ids = {n.port: n.status()["id"] for n in cluster.nodes}

        async def transfer():
            async with Client([leader.address], timeout=15.0) as client:
                await client.leader_transfer(ids[follower.port])

        asyncio.run(transfer())
        wait_for(lambda: cluster.agreed_leader() is follower, "the slow member to lead", 30)
        asyncio.run(timed_puts(cluster.endpoints, "slow-leader", 10))
        leaders = [(s["term"], s["id"]) for s in map(lambda n: n.status(), cluster.nodes) if s and s["role"] == "leader"]
        assert len({term for term, _ in leaders}) == len(leaders), f"two leaders in one term: {leaders}"
        for node in cluster.nodes:
            assert not asyncio.run(read_back(node.address, "slow-leader", 10))
            assert not asyncio.run(read_back(node.address, "fast", 60))
