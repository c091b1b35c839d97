"""`tools/bench.py` main: parse, start or reach the target, run, report, clean up.

Ctrl-C (or SIGTERM) stops the run at once; whatever was measured is still printed and
written, every process this tool started is stopped, and the exit code is 130.
"""
from __future__ import annotations

import dataclasses

import signal
import sys

from . import plot
from .cluster import ClusterError, LocalCluster
from .drivers import DriverError
from .etcd_native import EtcdbenchError
from .options import OptionsError, build_parser, parse_options
from .pysyncobj_target import NOT_DURABLE, PySyncObjBenchmark, PySyncObjCluster, PySyncObjError
from .report import Progress, document, load_series, table, write_json
from .runner import Benchmark, target_describer
from .workers import WorkerFailed

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _interrupt_on_sigterm() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_options(argv)
    except OptionsError as e:
        build_parser().print_usage(sys.stderr)
        print(f"bench.py: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if opts.plot_path and not plot.available():
        print(f"bench.py: {plot.MISSING}", file=sys.stderr)
    if opts.compare:
        return _compare(opts)
    _interrupt_on_sigterm()
    progress = Progress()
    cluster = None
    bench = None
    code = EXIT_OK
    try:
        if opts.target == "pysyncobj":
            progress.update(f"starting a local PySyncObj {opts.pysyncobj_version} cluster of {opts.nodes}")
            cluster = PySyncObjCluster(opts.pysyncobj_python, opts.nodes, keep_data=opts.keep_data)
            target = cluster.start()
            progress.done(f"local PySyncObj {opts.pysyncobj_version} cluster of {opts.nodes} ready: " + ", ".join(
                f"{m.name}{' (leader)' if m.leader else ''} {m.address} pid {m.pid}" for m in target.members))
            progress.done(f"note: {NOT_DURABLE}")
            bench = PySyncObjBenchmark(opts, cluster, progress)
        elif not opts.endpoints:
            progress.update(f"starting a local abcd cluster of {opts.nodes}")
            cluster = LocalCluster(opts.nodes, keep_data=opts.keep_data, tls=opts.tls)
            opts = dataclasses.replace(opts, cacert=cluster.cacert)
            target = cluster.start()
            progress.done(f"local abcd cluster of {opts.nodes} ready: " + ", ".join(
                f"{m.name}{' (leader)' if m.leader else ''} {m.address} pid {m.pid}" for m in target.members))
        if bench is None:
            bench = Benchmark(opts, target_describer(opts, cluster), progress)
        bench.run()
    except KeyboardInterrupt:
        progress.clear()
        print("bench.py: interrupted; stopping what was started", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except (ClusterError, DriverError, WorkerFailed, EtcdbenchError, PySyncObjError, OSError) as e:
        progress.clear()
        print(f"bench.py: error: {e}", file=sys.stderr)
        code = EXIT_FAILED
    finally:
        if cluster is not None:
            progress.update("stopping the local cluster")
            cluster.stop()
            progress.clear()
    series = [bench.series()] if bench is not None else []
    if series and series[0]["rows"]:
        print(table(series))
        if opts.json_path:
            write_json(opts.json_path, document(opts.config(), series, ["bench.py", *argv]))
        if opts.plot_path and plot.available():
            plot.draw(series, opts.plot_path)
    return code


def _compare(opts) -> int:
    try:
        series = load_series(opts.compare)
    except ValueError as e:
        print(f"bench.py: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(table(series))
    if opts.json_path:
        write_json(opts.json_path, document({"compare": list(opts.compare)}, series, ["bench.py", "--compare",
                                                                                     *opts.compare]))
    if opts.plot_path and plot.available():
        plot.draw(series, opts.plot_path)
    return EXIT_OK
