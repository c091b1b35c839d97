"""python -m abcd.sim: run the deterministic cluster simulator and watch Raft work.

    python -m abcd.sim --nodes 5 --seed 42 --steps 20000 --trace
    python -m abcd.sim --seeds 200 --faults drop,partition,crash
    python -m abcd.sim --seeds 200 --snapshot-every 3

Record one run for the dashboard (at most --steps events, every member's state after
each), and serve it with the dashboard's page on 127.0.0.1 until Ctrl-C:

    python -m abcd.sim --nodes 5 --seed 42 --record run.json
    python -m abcd.sim --nodes 5 --seed 42 --record run.json --serve --port 8070

Run a core that breaks one rule of Raft on purpose (abcd/sim/broken.py); a recorded
run stops at the first violation and names the invariant and the members involved.
This seed gives two leaders in one term within 100 events:

    python -m abcd.sim --nodes 5 --seed 90 --broken GrantEveryVote --record broken.json

The Raft paper's Figure 8, staged (three members, scripted crashes and partitions):
a leader that commits an older term's entry by counting replicas loses it.

    python -m abcd.sim --scenario figure8 --broken CommitOldTerms --record figure8.json
"""
from __future__ import annotations

import argparse
import sys
import time

import os

from ..raft.core import Options, RaftCore
from .broken import BROKEN, EXAMPLES
from .runner import ALL_FAULTS, SimulationFailure, run_seed
from .trace import TracePrinter

DEFAULT_PORT = 8070


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
    examples = "\n".join(f"  python -m abcd.sim {flags} --broken {name} --record broken.json" for name, flags in EXAMPLES.items())
    p = argparse.ArgumentParser(
        prog="python -m abcd.sim",
        description=__doc__.split("\n")[0],
        epilog=(
            "Record a run for the dashboard, and serve it with the page (Ctrl-C stops):\n"
            "  python -m abcd.sim --nodes 5 --seed 42 --record run.json --serve\n\n"
            "Seeds that break each broken core's rule early:\n" + examples + "\n"
            "  python -m abcd.sim --scenario figure8 --broken CommitOldTerms --record figure8.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    p.add_argument("--record", metavar="FILE", help="record one run (at most --steps events) as JSON for the dashboard")
    p.add_argument("--serve", action="store_true", help="with --record: serve the dashboard with the run on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=None, help=f"the port of --serve (default {DEFAULT_PORT})")
    p.add_argument("--broken", choices=sorted(BROKEN), metavar="NAME", help="run a core that breaks one rule: " + ", ".join(sorted(BROKEN)))
    p.add_argument(
        "--scenario",
        choices=("figure8",),
        help="with --record: record a staged run instead of a seed's (figure8: the paper's Figure 8; "
        "it fixes the members, the seed and the faults)",
    )
    args = p.parse_args(argv)
    if args.nodes < 1:
        p.error("--nodes must be at least 1")
    if args.steps < 1:
        p.error("--steps must be at least 1")
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.serve and not args.record:
        p.error("--serve serves the run it records: give --record FILE too")
    if args.port is not None and not args.serve:
        p.error("--port is the port of --serve")
    if args.port is not None and not 0 < args.port < 65536:
        p.error(f"--port must be between 1 and 65535, not {args.port}")
    if args.scenario and not args.record:
        p.error("--scenario is recorded: give --record FILE too")
    if args.record:
        if args.seeds != 1:
            p.error("--record records one run: give --seed, not --seeds")
        folder = os.path.dirname(os.path.abspath(args.record))
        if not os.path.isdir(folder):
            p.error(f"--record {args.record}: the folder {folder} does not exist")
        return record(args)
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
                core_factory=BROKEN[args.broken] if args.broken else RaftCore,
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


def record(args) -> int:
    """--record (and --serve): one run to a file, then perhaps serve it."""
    from .record import record_figure_8, record_run, write_run

    start = time.perf_counter()
    if args.scenario == "figure8":
        run = record_figure_8(args.broken)
    else:
        run = record_run(
            args.seed,
            nodes=args.nodes,
            steps=args.steps,
            faults=args.faults,
            broken=args.broken,
            snapshots=True if args.snapshot_every is None else args.snapshot_every,
            options=Options(trace_messages=args.trace and args.messages),
            tracer=TracePrinter(sys.stdout) if args.trace else None,
        )
    size = write_run(run, args.record)
    size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    steps = run["steps"]
    print(
        f"recorded {'the ' + args.scenario + ' scenario' if args.scenario else 'seed ' + str(args.seed)}: {len(steps)} steps, {steps[-1]['time']:.3f} s virtual, "
        f"{size_text} to {args.record} ({time.perf_counter() - start:.1f} s)",
        flush=True,
    )
    violation = run["violation"]
    if violation is not None:
        members = ", ".join(f"n{i}" for i in violation["members"])
        print(
            f"violation at step {violation['step']} ({violation['time']:.3f} s): {violation['invariant']}"
            f"{' (' + members + ')' if members else ''}: {violation['message']}",
            flush=True,
        )
    status = 1 if violation is not None and args.broken is None else 0
    if args.serve:
        from .serve import serve

        served = serve(args.record, args.port or DEFAULT_PORT)
        status = status or served
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head: stop quietly
        sys.exit(0)
