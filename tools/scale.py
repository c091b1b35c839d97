#!/usr/bin/env python3
"""What N keys cost abcd: memory per member, data dir, restart and catch-up time.

    scale.py --scale N[,N...] [--nodes 3] [--snapshot-count C] [--json FILE] [--plot FILE.png]

For each N, a fresh local cluster (fsync on) is loaded with N distinct keys (16-byte
keys, 100-byte values); the tool then reports per member the resident memory (peak
during the load, after it, after a restart), the data dir size, the time from a
kill -9 of every member to the first linearizable read, and the time a new member
takes to catch up.  See docs/performance.md, "Memory per key".
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import plot  # noqa: E402
from benchlib.scale import AbcdScale, draw, table  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scale takes key counts separated by commas, got {text!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"--scale takes positive key counts, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scale.py", description=__doc__.split("\n\n")[1])
    p.add_argument("--scale", type=parse_sizes, required=True, metavar="N[,N...]", help="key counts, one fresh cluster each")
    p.add_argument("--target", choices=("abcd", "etcd"), default="abcd")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--snapshot-count", type=int, help="the nodes' --snapshot-count (default: theirs)")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--plot", dest="plot_path", metavar="FILE.png", help="draw each figure against N (matplotlib)")
    return p


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the run as Ctrl-C does: the cluster is stopped


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    if opts.target == "etcd":
        print("scale.py: error: --target etcd is not implemented yet; measure etcd by hand as "
              "docs/performance.md says (\"Measuring etcd\")", file=sys.stderr)
        return EXIT_USAGE
    if opts.plot_path and not plot.available():
        print(f"scale.py: {plot.MISSING}", file=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)
    args = ["--snapshot-count", str(opts.snapshot_count)] if opts.snapshot_count is not None else []
    scale = AbcdScale(opts.nodes, args, lambda text: print(text, file=sys.stderr, flush=True))
    results = []
    code = EXIT_OK
    try:
        for n in opts.scale:
            results.append(scale.measure(n))
    except KeyboardInterrupt:
        print("scale.py: interrupted; the cluster was stopped", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as e:  # a node that died, a timeout: say what was seen, report what was measured
        print(f"scale.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        code = EXIT_FAILED
    if results:
        print(table(results))
        if opts.json_path:
            with open(opts.json_path, "w") as f:
                json.dump({"format": "abcd-scale/1", "system": "abcd", "argv": ["scale.py", *(argv or sys.argv[1:])],
                           "results": [r.to_json() for r in results]}, f, indent=1)
        if opts.plot_path and plot.available():
            draw({"abcd": results}, opts.plot_path)
    return code


if __name__ == "__main__":
    sys.exit(main())
