"""`tools/scale.py --target etcd`: the figures of `benchlib.scale`, measured on etcd.

For each N, one fresh etcd cluster (`benchlib.etcd_cluster`: loopback, temporary data
dirs, fsync on, abcd's defaults where they matter), then the same steps as for abcd:

1. load: the same N keys and values as abcd's (`scale.key_of`, `scale.value_of`), through
   etcd's v3 JSON gateway of the leader, TXN_PUTS puts in one transaction (each key
   still gets one version: a key is put once), WRITERS transactions in flight (one put
   per request held etcd to about a thousand keys a second here: the gateway's cost per
   request, not etcd's); every member's resident memory sampled, the highest is the peak;
2. after: once every member's revision is the leader's, each member's resident memory
   and the size of its data dir;
3. restart: kill -9 of every member, all started again on their data dirs; the time from
   the start until a linearizable range of the last key returns its value;
4. catch-up: `member add` of a new member through the leader, which then starts with an
   empty data dir and `--initial-cluster-state existing`; the time from the `member add`
   until the new member's own revision (its `/v3/maintenance/status`) is the leader's.
"""
from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from .cluster import ClusterError, http_json
from .etcd_cluster import EtcdCluster
from .procstat import dir_bytes, rss_bytes
from .scale import Bar, MemberFigures, Sampler, ScaleResult, _wait, key_of, sampled_load, value_of, wait_restarted
from .workload import b64

WRITERS = 16  # transactions in flight while loading
TXN_PUTS = 128  # puts per transaction: etcd's --max-txn-ops default


async def load(endpoint: str, n: int, bar: Bar) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    starts = iter(range(0, n, TXN_PUTS))  # shared by the writers: each batch is put once

    async def writer(http: aiohttp.ClientSession) -> None:
        for start in starts:
            end = min(start + TXN_PUTS, n)
            puts = [{"requestPut": {"key": b64(key_of(i)), "value": b64(value_of(i))}} for i in range(start, end)]
            async with http.post(f"http://{endpoint}/v3/kv/txn", data=orjson.dumps({"success": puts})) as reply:
                if reply.status != 200:
                    raise ClusterError(f"etcd txn at {endpoint} answered {reply.status}: {await reply.text()}")
            bar.update(end - start)

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(*(writer(http) for _ in range(WRITERS)))


def linearizable_get(address: str, key: str, value: str) -> bool:
    """A linearizable range of `key` at `address` returns `value`."""
    try:
        body = http_json("POST", f"http://{address}/v3/kv/range", {"key": b64(key)}, timeout=2)
    except ValueError:
        return False
    kvs = body.get("kvs") or []
    return bool(kvs) and kvs[0].get("value") == b64(value)


class EtcdScale:
    """One N on a fresh etcd cluster; `log` prints a finished step."""

    def __init__(self, nodes: int, args: list[str], log, binary: str = "etcd") -> None:
        self.nodes = nodes
        self.args = args
        self.log = log
        self.binary = binary

    def measure(self, n: int) -> ScaleResult:
        cluster = EtcdCluster(self.nodes, self.binary, self.args)
        result = ScaleResult(n)
        try:
            target = cluster.start()
            members = cluster.members
            pids = {m.name: m.pid for m in members}
            sampler = Sampler(pids)
            before = {name: rss_bytes(pid) or 0 for name, pid in pids.items()}
            leader = target.leader.address

            result.load_s = sampled_load(sampler, n, f"N={n:,} etcd: loading", lambda bar: load(leader, n, bar))
            revision = cluster.member(leader).revision()
            _wait(lambda: all((m.revision() or 0) >= revision for m in members), "every etcd member to apply the load")
            target = cluster.wait_ready()
            roles = {m.address: "leader" if m.leader else "follower" for m in target.members}
            for m in members:
                result.members.append(MemberFigures(m.name, roles[m.address], before[m.name], sampler.peak[m.name],
                                                    rss_bytes(m.pid) or 0, dir_bytes(m.data_dir)))
            self.log(f"N={n:,}: etcd loaded in {result.load_s} s; " + ", ".join(
                f"{m.name} ({m.role}) peak {m.rss_peak / 2**20:.0f} MB, after {m.rss_after / 2**20:.0f} MB, "
                f"data {m.data_dir / 2**20:.0f} MB" for m in result.members))

            # Restart: kill -9 all, start all, first linearizable read of the last key.
            last_key, last_value = key_of(n - 1), value_of(n - 1)
            cluster.kill_all()
            t0 = time.monotonic()
            cluster.start_all()
            wait_restarted(
                members, lambda m: m.running and m.status(timeout=0.5) is not None,
                lambda: any(m.running and linearizable_get(m.address, last_key, last_value) for m in members),
                f"N={n:,} etcd: restarting, to a linearizable read")
            result.restart_s = round(time.monotonic() - t0, 2)
            target = cluster.wait_ready()
            for figures, m in zip(result.members, members):
                figures.rss_after_restart = rss_bytes(m.pid)
            self.log(f"N={n:,}: etcd restart of all {self.nodes} after kill -9 to the first linearizable read: "
                     f"{result.restart_s} s")

            # Catch-up: member add through the leader, the new member started empty.
            leader = target.leader.address
            revision = cluster.member(leader).revision()
            bar = Bar(revision, f"N={n:,} etcd: catching up", unit="revisions")
            newcomer = cluster.add_member(leader)
            t0 = newcomer.added_at

            def caught_up() -> bool:
                if not newcomer.running:
                    raise ClusterError(f"the new etcd member exited:\n{newcomer.output()}")
                applied = newcomer.revision() or 0
                if applied > bar.n:
                    bar.update(min(applied, revision) - bar.n)
                return applied >= revision

            try:
                _wait(caught_up, "the new etcd member to catch up")
            finally:
                bar.close()
            result.catchup_s = round(time.monotonic() - t0, 2)
            result.catchup_rss = rss_bytes(newcomer.pid)
            self.log(f"N={n:,}: a new etcd member caught up in {result.catchup_s} s")
        finally:
            cluster.stop()
        return result
