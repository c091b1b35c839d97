"""The command line of `tools/chaos.py` → options (all validation happens here)."""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

from . import schedule

COMMANDS = ("run", "soak", "failover")


@dataclass(frozen=True, slots=True)
class RunOptions:
    nodes: int
    duration: float
    seed: int
    seed_drawn: bool  # True when no --seed was given
    workers: int
    readers_per_node: int
    keys: int
    ops_per_key: int
    timeout: float
    faults: tuple[str, ...]
    heartbeat_ms: int
    election_timeout_ms: int
    unsafe_stale_reads: bool
    history: str | None
    json: str | None
    data_dir: str | None
    budget: int
    progress_every: float
    argv: tuple[str, ...]
    tls: bool = False  # the members speak TLS (a CA made for the run), clients use https/wss
    sample_every: float | None = None  # the soak: seconds between resource samples
    snapshot_count: int | None = None  # the members' --snapshot-count, when given

    @property
    def command(self) -> str:
        return "soak" if self.sample_every else "run"

    @property
    def node_args(self) -> list[str]:
        args = ["--heartbeat-ms", str(self.heartbeat_ms), "--election-timeout-ms", str(self.election_timeout_ms),
                "--log-level", "WARNING"]
        if self.unsafe_stale_reads:
            args.append("--unsafe-stale-reads")
        if self.snapshot_count is not None:
            args += ["--snapshot-count", str(self.snapshot_count)]
        return args

    def replay(self) -> str:
        """The command that runs the same schedule again."""
        text = (f"python tools/chaos.py {self.command} --seed {self.seed} --nodes {self.nodes} --duration {self.duration:g} "
                f"--workers {self.workers} --readers-per-node {self.readers_per_node} --keys {self.keys} "
                f"--faults {','.join(self.faults)} --heartbeat-ms {self.heartbeat_ms} "
                f"--election-timeout-ms {self.election_timeout_ms}")
        if self.sample_every:
            text += f" --sample-every {self.sample_every:g}"
        if self.snapshot_count is not None:
            text += f" --snapshot-count {self.snapshot_count}"
        return text + (" --unsafe-stale-reads" if self.unsafe_stale_reads else "") + (" --tls" if self.tls else "")


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _at_least(n: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < n:
            raise argparse.ArgumentTypeError(f"must be at least {n}, got {text}")
        return value
    return parse


def _kinds(text: str) -> tuple[str, ...]:
    try:
        return schedule.parse_kinds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chaos.py [run]",
        description="Clients read and write a few keys while a nemesis kills, pauses, partitions, slows and "
                    "reconfigures the cluster; the history is then checked for linearizability and lost writes.",
    )
    p.add_argument("--nodes", type=_at_least(3), default=3, help="members (default 3)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--duration", type=_positive(float), default=60.0, help="seconds of traffic and faults (default 60)")
    length.add_argument("--minutes", type=_positive(float), help="the same in minutes")
    p.add_argument("--seed", type=int, help="the seed of the fault schedule and the clients (default: drawn, printed)")
    p.add_argument("--workers", type=_at_least(1), default=5, help="clients doing puts, gets, deletes and cas (default 5)")
    p.add_argument("--readers-per-node", type=_at_least(0), default=1,
                   help="extra clients pinned to one member each, only reading (default 1)")
    p.add_argument("--keys", type=_at_least(1), default=4, help="keys in use at a time (default 4)")
    p.add_argument("--ops-per-key", type=_at_least(10), default=300,
                   help="operations on a key before it is retired for a fresh one (default 300)")
    p.add_argument("--timeout", type=_positive(float), default=2.0, help="client timeout per call, seconds (default 2)")
    p.add_argument("--faults", type=_kinds, default=schedule.KINDS,
                   help="fault kinds, comma-separated, or 'all' (default): " + ", ".join(schedule.KINDS))
    p.add_argument("--heartbeat-ms", type=_positive(int), default=50, help="the members' heartbeat (default 50)")
    p.add_argument("--election-timeout-ms", type=_positive(int), default=500,
                   help="the members' election timeout (default 500)")
    p.add_argument("--unsafe-stale-reads", action="store_true",
                   help="start the members with a planted bug (reads served from local state without "
                        "ReadIndex) to see the checker catch it")
    p.add_argument("--tls", action="store_true",
                   help="run the members with TLS and peer mutual TLS (a CA made for the run); clients over https/wss")
    p.add_argument("--history", metavar="FILE",
                   help="write the history here (JSON); by default it is written, to "
                        "chaos-history-SEED.json, only when the run fails")
    p.add_argument("--json", metavar="FILE", help="write the run's summary here (JSON)")
    p.add_argument("--data-dir", metavar="DIR", help="the members' data dirs go here (default: a temporary "
                                                      "directory, removed unless the run fails)")
    p.add_argument("--budget", type=_positive(int), default=2_000_000, help="checker search steps per key")
    p.add_argument("--progress-every", type=_positive(float), default=5.0,
                   help="seconds between plain progress lines (default 5)")
    p.add_argument("--snapshot-count", type=_at_least(0),
                   help="the members' --snapshot-count (default: theirs, 100000; the soak's: 10000)")
    return p


def soak_parser() -> argparse.ArgumentParser:
    p = run_parser()
    p.prog = "chaos.py soak"
    p.description = ("A long run (default 60 minutes) of the same clients and nemesis, sampling every member's "
                     "resident memory, open file descriptors, asyncio tasks and data dir size, reported at the end "
                     "with the history's verdict.")
    p.set_defaults(duration=3600.0)
    # The run's --duration help names the run's default; say the soak's.
    for action in p._actions:
        if action.dest == "duration":
            action.help = "seconds of traffic and faults (default 3600)"
    p.add_argument("--sample-every", type=_positive(float), default=10.0,
                   help="seconds between resource samples (default 10)")
    return p


def parse_run(argv: list[str], *, soak: bool = False) -> RunOptions:
    p = soak_parser() if soak else run_parser()
    a = p.parse_args(argv)
    snapshot_count = a.snapshot_count if a.snapshot_count is not None else (10_000 if soak else None)
    duration = a.minutes * 60 if a.minutes else a.duration
    if a.election_timeout_ms < 2 * a.heartbeat_ms:
        p.error("--election-timeout-ms must be at least twice --heartbeat-ms")
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    return RunOptions(
        nodes=a.nodes, duration=duration, seed=seed, seed_drawn=a.seed is None, workers=a.workers,
        readers_per_node=a.readers_per_node, keys=a.keys, ops_per_key=a.ops_per_key, timeout=a.timeout,
        faults=a.faults, heartbeat_ms=a.heartbeat_ms, election_timeout_ms=a.election_timeout_ms,
        unsafe_stale_reads=a.unsafe_stale_reads, history=a.history, json=a.json, data_dir=a.data_dir,
        budget=a.budget, progress_every=a.progress_every, argv=tuple(argv), tls=a.tls,
        sample_every=a.sample_every if soak else None, snapshot_count=snapshot_count,
    )


def failover_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chaos.py failover",
        description="Kill the leader while writes run, and measure how long the cluster stays unwritable.",
    )
    p.add_argument("--nodes", type=_at_least(3), default=3)
    p.add_argument("--tries", type=_at_least(1), default=10)
    p.add_argument("--writers", type=_at_least(1), default=4)
    p.add_argument("--heartbeat-ms", type=_positive(int), default=100)
    p.add_argument("--election-timeout-ms", type=_positive(int), default=1000)
    return p
