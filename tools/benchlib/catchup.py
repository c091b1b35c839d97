"""`tools/catchup.py`: what a new member's catch-up by snapshot costs the leader's writes.

On one fresh cluster (fsync on, temporary data dirs) holding N keys (loaded as
scale.py loads them):

1. baseline: a steady write load on the leader for `seconds`, each write's latency
   recorded (one `/v1/session`, `window` puts in flight, overwriting `HOT_KEYS` keys
   with 100-byte values);
2. catch-up: a new member joins through the leader while the same load runs; it
   ends when the member is a voter that has applied the commit index the leader had
   when it joined (the leader compacted its log behind its snapshot, so the member gets
   the snapshot);
3. after: the same load again for `seconds`, with the new member in the cluster.

It reports each phase's write latencies (p50, p99, max, writes/s) and the catch-up
time.  Nothing here asserts on speed: it reports.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field

import aiohttp
import orjson

from .cluster import LocalCluster
from .drivers import DriverError
from .scale import Bar, load, value_of
from .stats import summarize_latencies

HOT_KEYS = 1000
PHASE_TIMEOUT_S = 900.0


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)


@dataclass
class CatchupResult:
    keys: int
    window: int
    load_s: float = 0.0
    snapshot_index: int = 0  # the start of the leader's log (status snapshot_index)
    catchup_s: float | None = None
    phases: list[Phase] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


class WriteLoad:
    """Puts through one session to `endpoint`, `window` in flight, until stopped; the
    latency of each, with the time it was answered."""

    def __init__(self, endpoint: str, window: int) -> None:
        self.endpoint = endpoint
        self.window = window
        self.samples: list[tuple[float, float]] = []  # (answered at, latency s)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://{self.endpoint}/v1/session", max_msg_size=0, compress=0)
            sent: dict[int, float] = {}
            next_id = 0
            while not stop.is_set() or sent:
                while not stop.is_set() and len(sent) < self.window:
                    i = next_id
                    next_id += 1
                    sent[i] = time.monotonic()
                    await ws.send_bytes(orjson.dumps(
                        [{"id": i, "op": "put", "key": f"hot/{i % HOT_KEYS:06d}", "value": value_of(i)}]))
                message = await ws.receive(timeout=60)
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise DriverError(f"write load: the session at {self.endpoint} closed ({message.extra})")
                now = time.monotonic()
                for answer in orjson.loads(message.data):
                    if answer["status"] != 200:
                        raise DriverError(f"write load: a put failed: {answer}")
                    self.samples.append((now, now - sent.pop(answer["id"])))
            await ws.close()

    def between(self, start: float, end: float) -> list[float]:
        return [latency for at, latency in self.samples if start <= at <= end]


def _status(node) -> dict | None:
    return node.status() if node.running else None


class CatchupUnderLoad:
    def __init__(self, nodes: int, args: list[str], log) -> None:
        self.nodes = nodes
        self.args = args
        self.log = log

    def measure(self, n: int, seconds: float, window: int) -> CatchupResult:
        bench_cluster = LocalCluster(self.nodes, node_args=self.args)
        cluster = bench_cluster.processes
        result = CatchupResult(n, window)
        try:
            bench_cluster.start()
            leader = cluster.wait_ready()

            async def loaded() -> None:
                bar = Bar(n, f"N={n:,}: loading")
                try:
                    await load(leader.address, n, bar)
                finally:
                    bar.close()

            t0 = time.monotonic()
            asyncio.run(loaded())
            result.load_s = round(time.monotonic() - t0, 2)
            commit = leader.status()["commit_index"]
            _wait(lambda: all((s := _status(node)) and s["applied_index"] >= commit for node in cluster.nodes),
                  "every member to apply the load")
            _wait(lambda: leader.status()["snapshot_index"] > 0, "the leader to take a snapshot")
            result.snapshot_index = _settled(lambda: leader.status()["snapshot_index"])
            self.log(f"N={n:,}: loaded in {result.load_s} s; "
                     f"the leader's log starts after index {result.snapshot_index}")
            asyncio.run(self._phases(cluster, leader, seconds, window, result))
        finally:
            bench_cluster.stop()
        return result

    async def _phases(self, cluster, leader, seconds: float, window: int, result: CatchupResult) -> None:
        writes = WriteLoad(leader.address, window)
        stop = asyncio.Event()
        loading = asyncio.ensure_future(writes.run(stop))
        loop = asyncio.get_running_loop()

        def phase(name: str, start: float, end: float) -> None:
            figures = summarize_latencies(writes.between(start, end), end - start)
            result.phases.append(Phase(name, round(end - start, 2), {k: _round(v) for k, v in figures.items()}))
            self.log(f"  {name}: {figures['ops']} writes in {end - start:.1f} s, p50 {figures['p50_ms']:.1f} ms, "
                     f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms")

        try:
            await asyncio.sleep(1.0)  # the load reaches its pace
            start = time.monotonic()
            await asyncio.sleep(seconds)
            phase("baseline", start, time.monotonic())

            commit = (await loop.run_in_executor(None, leader.status))["commit_index"]
            start = time.monotonic()
            newcomer = cluster.new_node(join=leader.address)

            def caught_up() -> bool:
                if not newcomer.running:
                    raise RuntimeError(f"the new member exited:\n{newcomer.output()}")
                s = _status(newcomer)
                return bool(s and s["voter"] and s["applied_index"] >= commit)

            deadline = start + PHASE_TIMEOUT_S
            while not await loop.run_in_executor(None, _quietly(caught_up)):
                if loading.done():
                    loading.result()  # raises what stopped the load
                if time.monotonic() > deadline:
                    raise TimeoutError("the new member did not catch up")
                await asyncio.sleep(0.05)
            end = time.monotonic()
            result.catchup_s = round(end - start, 2)
            self.log(f"N={result.keys:,}: a new member caught up in {result.catchup_s} s under the write load")
            phase("during catch-up", start, end)

            start = time.monotonic()
            await asyncio.sleep(seconds)
            phase("after", start, time.monotonic())
        finally:
            stop.set()
            await loading


def _quietly(predicate):
    def call():
        try:
            return predicate()
        except OSError:
            return False
    return call


def _wait(predicate, what: str, timeout: float = PHASE_TIMEOUT_S, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _quietly(predicate)():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _settled(read, quiet_s: float = 3.0) -> int:
    """`read()` once it has not changed for `quiet_s` seconds: a snapshot the load
    started is taken before the baseline begins."""
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.2)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value


def _round(value):
    return round(value, 2) if isinstance(value, float) else value


def table(result: CatchupResult) -> str:
    lines = [f"{'keys':>9} {'phase':<16} {'seconds':>8} {'writes':>7} {'writes/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'max ms':>7}"]
    for p in result.phases:
        f = p.figures
        lines.append(f"{result.keys:>9,} {p.name:<16} {p.seconds:>8} {f['ops']:>7} {f['ops_per_s']:>9.0f} "
                     f"{f['p50_ms'] or 0:>7.1f} {f['p99_ms'] or 0:>7.1f} {f['max_ms'] or 0:>7.1f}")
    base = next((p for p in result.phases if p.name == "baseline"), None)
    during = next((p for p in result.phases if p.name == "during catch-up"), None)
    if base and during and base.figures.get("p99_ms") and during.figures.get("p99_ms"):
        lines.append(f"catch-up {result.catchup_s} s; p99 during / baseline: "
                     f"{during.figures['p99_ms'] / base.figures['p99_ms']:.2f}")
    return "\n".join(lines)
