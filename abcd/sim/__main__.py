"""python -m abcd.sim: run the deterministic cluster simulator and watch Raft work.

    python -m abcd.sim --nodes 5 --seed 42 --steps 20000 --trace
    python -m abcd.sim --seeds 200 --faults drop,partition,crash
    python -m abcd.sim --seeds 200 --snapshot-every 3
"""
from __future__ import annotations

import argparse
import sys
import time

from ..raft.core import Options
from .runner import ALL_FAULTS, SimulationFailure, run_seed
from .trace import TracePrinter


def parse_faults(text: str) -> tuple[str, ...]:
    if text in ("none", ""):
        return ()
    if text == "all":
        return ALL_FAULTS
    faults = tuple(f.strip() for f in text.split(","))
    unknown = [f for f in faults if f not in ALL_FAULTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault {unknown[0]!r}; choose from {', '.join(ALL_FAULTS)}")
    return faults


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m abcd.sim", description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=1, help="the first seed")
    p.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds to run")
    p.add_argument("--steps", type=int, default=2000, help="events per run before faults heal")
    p.add_argument("--faults", type=parse_faults, default=ALL_FAULTS, help="comma list of " + ",".join(ALL_FAULTS) + ", 'all' or 'none'")
    p.add_argument("--trace", action="store_true", help="print every message and role change")
    p.add_argument("--messages", action="store_true", help="with --trace: include every message, not just role changes")
    p.add_argument(
        "--snapshot-every",
        type=int,
        default=None,
        help="snapshot and compact every N applied entries, 0 for never (by default the seed decides)",
    )
    args = p.parse_args(argv)
    if args.nodes < 1:
        p.error("--nodes must be at least 1")
    options = Options(trace_messages=args.trace and args.messages)
    start = time.perf_counter()
    events = 0
    failures = 0
    installed = delivered = 0
    for seed in range(args.seed, args.seed + args.seeds):
        tracer = TracePrinter(sys.stdout) if args.trace else None
        try:
            result = run_seed(
                seed,
                nodes=args.nodes,
                steps=args.steps,
                faults=args.faults,
                options=options,
                tracer=tracer,
                snapshots=True if args.snapshot_every is None else args.snapshot_every,
            )
        except SimulationFailure as failure:
            failures += 1
            print(f"FAIL {failure}", flush=True)
            continue
        events += result.events
        delivered += result.snapshot_stats["snapshots_delivered"]
        installed += result.snapshot_stats["snapshots_installed"]
        if args.seeds == 1 or args.trace:
            print(result.summary())
    elapsed = time.perf_counter() - start
    print(
        f"{args.seeds - failures}/{args.seeds} seeds passed, {events} events in {elapsed:.1f} s "
        f"({events / elapsed:,.0f} events/s), {delivered} InstallSnapshot deliveries, {installed} installed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head: stop quietly
        sys.exit(0)
