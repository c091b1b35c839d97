#!/usr/bin/env python3
"""What N keys cost abcd (and etcd): memory per member, data dir, restart and catch-up time.

    scale.py --scale N[,N...] [--target abcd|etcd|abcd,etcd] [--nodes 3] [--snapshot-count C]
             [--etcd PATH] [--json FILE] [--plot FILE.png]

For each N, a fresh local cluster (fsync on) is loaded with N distinct keys (16-byte
keys, 100-byte values); the tool then reports per member the resident memory (peak
during the load, after it, after a restart), the data dir size, the time from a
kill -9 of every member to the first linearizable read, and the time a new member
takes to catch up.  With two targets, both are measured for each N in turn (same run)
and shown side by side.  See docs/performance.md, "Memory per key".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import plot  # noqa: E402
from benchlib.scale import AbcdScale, draw, table  # noqa: E402
from benchlib.scale_compare import side_by_side  # noqa: E402
from benchlib.scale_etcd import EtcdScale  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scale takes key counts separated by commas, got {text!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"--scale takes positive key counts, got {text!r}")
    return sizes


SYSTEMS = ("abcd", "etcd")


def parse_targets(text: str) -> tuple[str, ...]:
    """"abcd", "etcd", "abcd,etcd" (in that order of measuring for each N) or "both"."""
    if text.strip() == "both":
        return SYSTEMS
    targets = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [t for t in targets if t not in SYSTEMS]
    if not targets or unknown or len(set(targets)) != len(targets):
        raise argparse.ArgumentTypeError(f"--target takes abcd, etcd, abcd,etcd or both, got {text!r}")
    return targets


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scale.py", description=__doc__.split("\n\n")[1])
    p.add_argument("--scale", type=parse_sizes, required=True, metavar="N[,N...]", help="key counts, one fresh cluster each")
    p.add_argument("--target", type=parse_targets, default=("abcd",), metavar="abcd|etcd|abcd,etcd|both",
                   help="the systems to measure, each N on each in turn (default abcd)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--snapshot-count", type=int, help="the members' --snapshot-count, abcd's and etcd's (default: theirs, 100000 both)")
    p.add_argument("--etcd", dest="etcd_binary", default="etcd", metavar="PATH", help="the etcd binary (default: etcd on PATH)")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--plot", dest="plot_path", metavar="FILE.png", help="draw each figure against N (matplotlib)")
    return p


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the run as Ctrl-C does: the cluster is stopped


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    if "etcd" in opts.target and shutil.which(opts.etcd_binary) is None:
        print(f"scale.py: error: --target etcd needs an etcd binary: {opts.etcd_binary!r} is not on PATH "
              "(install etcd 3.4 or later, or name it with --etcd PATH)", file=sys.stderr)
        return EXIT_USAGE
    if opts.plot_path and not plot.available():
        print(f"scale.py: {plot.MISSING}", file=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)
    args = ["--snapshot-count", str(opts.snapshot_count)] if opts.snapshot_count is not None else []
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    scales = {system: AbcdScale(opts.nodes, args, log) if system == "abcd"
              else EtcdScale(opts.nodes, args, log, opts.etcd_binary) for system in opts.target}
    series: dict[str, list] = {system: [] for system in opts.target}
    code = EXIT_OK
    try:
        for n in opts.scale:
            for system, scale in scales.items():  # interleaved: both systems see the machine alike
                series[system].append(scale.measure(n))
    except KeyboardInterrupt:
        print("scale.py: interrupted; the cluster was stopped", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as e:  # a node that died, a timeout: say what was seen, report what was measured
        print(f"scale.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        code = EXIT_FAILED
    if any(series.values()):
        report(series, opts, argv)
    return code


def report(series: dict[str, list], opts, argv: list[str] | None) -> None:
    """The table of each system, both side by side, the JSON and the plot."""
    for system, results in series.items():
        if results:
            print(table(results, system))
    if len(series) == 2:
        print()
        print(side_by_side(series, *series))
    if opts.json_path:
        with open(opts.json_path, "w") as f:
            json.dump({"format": "abcd-scale/2", "systems": list(series), "argv": ["scale.py", *(argv or sys.argv[1:])],
                       "results": [{"system": system, **r.to_json()} for system, results in series.items()
                                   for r in results]}, f, indent=1)
    if opts.plot_path and plot.available():
        draw({system: results for system, results in series.items() if results}, opts.plot_path)


if __name__ == "__main__":
    sys.exit(main())
