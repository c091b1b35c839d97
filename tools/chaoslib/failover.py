"""`chaos.py failover`: kill the leader while writes run, and time how long the cluster
stays unwritable.

Each try: writers keep putting keys through every node; the leader is killed with
SIGKILL; we time from the kill to the next acknowledged write; the killed node is
restarted and the cluster settles.  At the end every acknowledged write is read
back (linearizable reads): nothing acknowledged may be lost.
"""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import time

from .cluster import REPO_ROOT  # noqa: F401  (puts the package on sys.path)

from abcd.client import Client, ClientError  # noqa: E402
from abcd.localcluster import LocalCluster  # noqa: E402


class Writers:
    def __init__(self, endpoints: list[str], count: int) -> None:
        self.endpoints = endpoints
        self.count = count
        self.acked: dict[str, str] = {}
        self.ack_times: list[float] = []
        self.failures = 0
        self.running = True

    async def run(self) -> None:
        async with Client(self.endpoints, timeout=10.0) as client:
            await asyncio.gather(*(self._writer(client, w) for w in range(self.count)))

    async def _writer(self, client: Client, w: int) -> None:
        seq = 0
        while self.running:
            seq += 1
            key, value = f"chaos/{w}/{seq}", f"v{seq}"
            invoked = time.monotonic()
            try:
                await client.put(key, value)
            except ClientError:
                self.failures += 1
                continue
            self.acked[key] = value
            self.ack_times.append((invoked, time.monotonic()))

    def first_ack_after(self, t: float) -> float | None:
        """The first acknowledgement of a write *sent* after t (an answer already on
        its way from the old leader when it died does not count)."""
        later = [acked for invoked, acked in self.ack_times if invoked > t]
        return min(later) if later else None


async def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return False


async def kill_leader(args) -> int:
    node_args = ["--heartbeat-ms", str(args.heartbeat_ms), "--election-timeout-ms", str(args.election_timeout_ms),
                 "--log-level", "WARNING"]
    with tempfile.TemporaryDirectory(prefix="abcd-chaos-") as root, LocalCluster(root, args.nodes, args=node_args) as cluster:
        writers = Writers([n.address for n in cluster.nodes], args.writers)
        task = asyncio.create_task(writers.run())
        recoveries = []
        for attempt in range(1, args.tries + 1):
            leader = await asyncio.to_thread(cluster.wait_ready)
            before = len(writers.ack_times)
            await wait_until(lambda: len(writers.ack_times) > before + 50, 10)
            t_kill = time.monotonic()
            leader.kill()
            ok = await wait_until(lambda: writers.first_ack_after(t_kill) is not None, 30)
            recovery = writers.first_ack_after(t_kill) - t_kill if ok else float("inf")
            recoveries.append(recovery)
            print(f"try {attempt:2}: killed leader on port {leader.port}; next write acknowledged after {recovery * 1000:7.1f} ms",
                  flush=True)
            await asyncio.to_thread(leader.start)
        writers.running = False
        await task
        async with Client([n.address for n in cluster.nodes], timeout=10.0) as client:
            lost = [k for k, v in writers.acked.items() if ((await client.get(k)) or {}).get("kv", {}).get("value") != v]
    print(f"\n{args.nodes} nodes, heartbeat {args.heartbeat_ms} ms, election timeout {args.election_timeout_ms} ms, "
          f"{args.writers} writers")
    print(f"kill -9 of the leader -> next acknowledged write: median {statistics.median(recoveries) * 1000:.0f} ms, "
          f"worst {max(recoveries) * 1000:.0f} ms over {len(recoveries)} tries")
    print(f"{len(writers.acked)} writes acknowledged, {writers.failures} failed or timed out, "
          f"{len(lost)} acknowledged writes lost")
    return 1 if lost else 0
