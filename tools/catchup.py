#!/usr/bin/env python3
"""What a new member's catch-up by snapshot costs the leader's writes.

    catchup.py --keys N [--nodes 3] [--seconds 15] [--window 32] [--json FILE]

A fresh local cluster (fsync on) is loaded with N distinct keys as scale.py loads
them; then a steady write load runs on the leader: alone (baseline), while a new
member joins and catches up by snapshot, and after.  It reports each phase's write
latencies (p50, p99, max) and the catch-up time.  See docs/performance.md,
"Catch-up under writes".
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.catchup import CatchupUnderLoad, table  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="catchup.py", description=__doc__.split("\n\n")[1])
    p.add_argument("--keys", type=int, required=True, help="keys loaded before the new member joins")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=15.0, help="length of the baseline and after phases")
    p.add_argument("--window", type=int, default=32, help="writes in flight")
    p.add_argument("--snapshot-count", type=int, help="the nodes' --snapshot-count (default: theirs)")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write the figures as JSON")
    return p


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the run as Ctrl-C does: the cluster is stopped


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    args = ["--snapshot-count", str(opts.snapshot_count)] if opts.snapshot_count is not None else []
    bench = CatchupUnderLoad(opts.nodes, args, lambda text: print(text, file=sys.stderr, flush=True))
    try:
        result = bench.measure(opts.keys, opts.seconds, opts.window)
    except KeyboardInterrupt:
        print("catchup.py: interrupted; the cluster was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a node that died, a timeout: say what was seen
        print(f"catchup.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(table(result))
    if opts.json_path:
        with open(opts.json_path, "w") as f:
            json.dump({"format": "abcd-catchup/1", "argv": ["catchup.py", *(argv or sys.argv[1:])],
                       "result": result.to_json()}, f, indent=1)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
