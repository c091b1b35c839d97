"""`tools/scale.py`: what N keys cost a fresh cluster, for several N.

For each N, one fresh 3-member cluster (fsync on, temporary data dirs):

1. load: N distinct keys (16-byte keys, 100-byte values, one revision each), written
   through the pipelined `/v1/session` channel to the leader, WINDOW requests in flight;
   every member's resident memory (VmRSS from /proc) sampled every SAMPLE_S seconds,
   the highest sample is the peak;
2. after: once every member has applied the last write, each member's resident memory
   and the size of its data dir;
3. restart: kill -9 of every member, all started again on the same data dirs (live
   progress: the members answering again, then the read); the time
   from the start until a linearizable get of the last key written answers it;
4. catch-up: a new member joins (through the leader); the time from its start until it
   is a voter that has applied the leader's commit index (a leader holding more entries
   than `--snapshot-catchup-entries` behind its snapshot sends it the snapshot).

Nothing here asserts on speed: it reports.
"""
from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import aiohttp
import orjson

from .cluster import LocalCluster
from .drivers import DriverError
from .procstat import dir_bytes, rss_bytes

KEY_SIZE = 16
VALUE_SIZE = 100
WINDOW = 2000  # puts in flight while loading
FRAME = 500  # puts per session frame
SAMPLE_S = 0.2
PHASE_TIMEOUT_S = 600.0


def key_of(i: int) -> str:
    return f"{i:0{KEY_SIZE}d}"


def value_of(i: int) -> str:
    # Every value differs (a node cannot share one string between keys), exactly 100 bytes.
    return (f"v{i:015d}" + "x" * VALUE_SIZE)[:VALUE_SIZE]


class Bar:
    """Live progress of a long phase: a tqdm bar when tqdm is installed and stderr is a
    terminal, otherwise a plain line every tenth of the way (tqdm is optional)."""

    def __init__(self, total: int, what: str, unit: str = "keys") -> None:
        self.total, self.what, self.unit = total, what, unit
        self.n = 0
        self._next_line = total / 10
        self._bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=what, unit=unit, unit_scale=True, leave=False, file=sys.stderr)

    def update(self, n: int) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.n >= self._next_line and self.total:
            print(f"  {self.what}: {self.n:,}/{self.total:,} {self.unit}", file=sys.stderr, flush=True)
            self._next_line += self.total / 10

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class MemberFigures:
    name: str
    role: str  # at the end of the load
    rss_before: int = 0  # the empty cluster's
    rss_peak: int = 0
    rss_after: int = 0
    data_dir: int = 0
    rss_after_restart: int | None = None


@dataclass
class ScaleResult:
    keys: int
    load_s: float = 0.0
    members: list[MemberFigures] = field(default_factory=list)
    restart_s: float | None = None
    catchup_s: float | None = None
    catchup_rss: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


class Sampler:
    """Peak VmRSS of some processes, sampled from a thread of its own while a phase runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: 0 for name in pids}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            rss = rss_bytes(pid)
            if rss is not None and rss > self.peak[name]:
                self.peak[name] = rss

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), SAMPLE_S)
            except asyncio.TimeoutError:
                pass
        self.sample()


async def load(endpoint: str, n: int, bar: Bar, start: int = 0) -> None:
    """Put keys start..n-1 through one session, WINDOW in flight, FRAME per frame."""
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://{endpoint}/v1/session", max_msg_size=0, compress=0)
        next_i, pending = start, 0
        while next_i < n or pending:
            while next_i < n and pending + FRAME <= WINDOW:
                end = min(n, next_i + FRAME)
                await ws.send_bytes(orjson.dumps(
                    [{"id": i, "op": "put", "key": key_of(i), "value": value_of(i)} for i in range(next_i, end)]))
                pending += end - next_i
                next_i = end
            message = await ws.receive(timeout=60)
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise DriverError(f"load: the session at {endpoint} closed ({message.extra})")
            answers = orjson.loads(message.data)
            bad = [a for a in answers if a["status"] != 200]
            if bad:
                raise DriverError(f"load: a put failed: {bad[0]}")
            pending -= len(answers)
            bar.update(len(answers))
        await ws.close()


def sampled_load(sampler: Sampler, n: int, what: str, load_with) -> float:
    """Seconds `load_with(bar)` (a coroutine putting n keys) takes, with `sampler`
    sampling the members' memory meanwhile and a progress bar saying `what`."""
    async def loaded() -> None:
        stop = asyncio.Event()
        sampling = asyncio.ensure_future(sampler.run(stop))
        bar = Bar(n, what)
        try:
            await load_with(bar)
        finally:
            bar.close()
            stop.set()
            await sampling

    t0 = time.monotonic()
    asyncio.run(loaded())
    return round(time.monotonic() - t0, 2)


def _name(node) -> str:
    """The --name a local cluster gave the node."""
    return node.args[node.args.index("--name") + 1]


def _status(node) -> dict | None:
    return node.status() if node.running else None


def _wait(predicate, what: str, timeout: float = PHASE_TIMEOUT_S, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_restarted(members: list, answers: Callable[[object], bool], read: Callable[[], bool], what: str) -> None:
    """Wait for the first linearizable read after a restart, with live progress: one step
    per member that answers again (`answers(member)`), and a last one for the read."""
    bar = Bar(len(members) + 1, what, unit="steps")
    up: set[int] = set()

    def done() -> bool:
        for i, member in enumerate(members):
            if i not in up and answers(member):
                up.add(i)
                bar.update(1)
        if read():
            bar.update(bar.total - bar.n)
            return True
        return False

    try:
        _wait(done, what)
    finally:
        bar.close()


def _linearizable_get(port: int, key: str, value: str) -> bool:
    from abcd.localcluster import http
    code, body = http(port, "GET", f"/v1/kv/{key}", timeout=2)
    return code == 200 and isinstance(body, dict) and (body.get("kv") or {}).get("value") == value


class AbcdScale:
    """One N on a fresh abcd cluster; `log` prints a finished step."""

    def __init__(self, nodes: int, args: list[str], log) -> None:
        self.nodes = nodes
        self.args = args
        self.log = log

    def measure(self, n: int) -> ScaleResult:
        bench_cluster = LocalCluster(self.nodes, node_args=self.args)
        cluster = bench_cluster.processes
        result = ScaleResult(n)
        try:
            bench_cluster.start()
            names = {node.address: _name(node) for node in cluster.nodes}
            leader = cluster.wait_ready()
            pids = {names[node.address]: node.proc.pid for node in cluster.nodes}
            sampler = Sampler(pids)
            before = {name: rss_bytes(pid) or 0 for name, pid in pids.items()}

            result.load_s = sampled_load(sampler, n, f"N={n:,}: loading", lambda bar: load(leader.address, n, bar))
            commit = leader.status()["commit_index"]
            _wait(lambda: all((s := _status(node)) and s["applied_index"] >= commit for node in cluster.nodes),
                  "every member to apply the load")
            for node in cluster.nodes:
                status = node.status()
                name = names[node.address]
                result.members.append(MemberFigures(
                    name, status["role"], before[name], sampler.peak[name], rss_bytes(node.proc.pid) or 0, dir_bytes(node.data_dir)))
            self.log(f"N={n:,}: loaded in {result.load_s} s; " + ", ".join(
                f"{m.name} ({m.role}) peak {m.rss_peak / 2**20:.0f} MB, after {m.rss_after / 2**20:.0f} MB, "
                f"data {m.data_dir / 2**20:.0f} MB" for m in result.members))

            # Restart: kill -9 all, start all, first linearizable read of the last key.
            last_key, last_value = key_of(n - 1), value_of(n - 1)
            for node in cluster.nodes:
                node.kill()
            t0 = time.monotonic()
            for node in cluster.nodes:
                node.start()
            wait_restarted(
                cluster.nodes, lambda node: _status(node) is not None,
                lambda: any(node.running and _linearizable_get(node.port, last_key, last_value) for node in cluster.nodes),
                f"N={n:,} abcd: restarting, to a linearizable read")
            result.restart_s = round(time.monotonic() - t0, 2)
            leader = cluster.wait_ready()
            for member, node in zip(result.members, cluster.nodes):
                member.rss_after_restart = rss_bytes(node.proc.pid)
            self.log(f"N={n:,}: restart of all {self.nodes} after kill -9 to the first linearizable read: "
                     f"{result.restart_s} s")

            # Catch-up: a new member, through the leader.
            commit = leader.status()["commit_index"]
            t0 = time.monotonic()
            newcomer = cluster.new_node(join=leader.address)

            bar = Bar(commit, f"N={n:,} abcd: catching up", unit="entries")

            def caught_up():
                s = _status(newcomer)
                if not newcomer.running:
                    raise RuntimeError(f"the new member exited:\n{newcomer.output()}")
                if s and s["applied_index"] > bar.n:
                    bar.update(min(s["applied_index"], commit) - bar.n)
                return s and s["voter"] and s["applied_index"] >= commit

            try:
                _wait(caught_up, "the new member to catch up")
            finally:
                bar.close()
            result.catchup_s = round(time.monotonic() - t0, 2)
            result.catchup_rss = rss_bytes(newcomer.proc.pid)
            self.log(f"N={n:,}: a new member caught up in {result.catchup_s} s")
        finally:
            bench_cluster.stop()
        return result


def table(results: list[ScaleResult], system: str = "abcd") -> str:
    mb = lambda b: "-" if b is None else f"{b / 2**20:.0f}"  # noqa: E731
    lines = [f"{'system':<6} {'keys':>9} {'member':<8} {'role':<9} {'peak MB':>8} {'after MB':>9} "
             f"{'B/key':>6} {'data MB':>8} {'restarted MB':>13} {'load s':>7} {'restart s':>9} {'catch-up s':>10}"]
    for r in results:
        for i, m in enumerate(r.members):
            first = i == 0
            lines.append(
                f"{system:<6} {r.keys:>9,} {m.name:<8} {m.role:<9} {mb(m.rss_peak):>8} {mb(m.rss_after):>9} "
                f"{(m.rss_after - m.rss_before) / r.keys:>6.0f} {mb(m.data_dir):>8} {mb(m.rss_after_restart):>13} "
                f"{(r.load_s if first else ''):>7} {(r.restart_s if first else ''):>9} "
                f"{(r.catchup_s if first else ''):>10}")
    return "\n".join(lines)


def draw(series: dict[str, list[ScaleResult]], path: str) -> None:
    """Four panels against N: peak and after-load memory per member (max over members),
    data dir, restart time, catch-up time; one line per system."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for i, (system, results) in enumerate(series.items()):
        ns = [r.keys for r in results]
        color = f"C{i}"  # one color per system in every panel
        ax = axes[0][0]
        ax.plot(ns, [max(m.rss_peak for m in r.members) / 2**20 for r in results], "o-", color=color,
                label=f"{system} peak (max)")
        ax.plot(ns, [max(m.rss_after for m in r.members) / 2**20 for r in results], "s--", color=color,
                label=f"{system} after load (max)")
        axes[0][1].plot(ns, [max(m.data_dir for m in r.members) / 2**20 for r in results], "o-", color=color, label=system)
        axes[1][0].plot(ns, [r.restart_s for r in results], "o-", color=color, label=system)
        axes[1][1].plot(ns, [r.catchup_s for r in results], "o-", color=color, label=system)
    for ax, title, unit in ((axes[0][0], "resident memory per member", "MB"), (axes[0][1], "data dir per member", "MB"),
                            (axes[1][0], "restart after kill -9 of all, to a linearizable read", "s"),
                            (axes[1][1], "catch-up of a new member", "s")):
        ax.set_title(title)
        ax.set_xlabel("keys")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
