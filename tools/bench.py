#!/usr/bin/env python3
"""abcd's benchmark: throughput, latency percentiles and CPU per process.

    bench.py [--nodes 3] [--concurrency 1,16,64,256] [--duration 10] [--warmup 2] [--reps 3]
             [--op put|get|get-serializable|mix] [--read-ratio 0.5] [--keys 10000]
             [--key-size 16] [--value-size 100] [--procs N] [--conns N] [--spread] [--http] [--tls]
             [--json FILE] [--plot FILE.png] [--label TEXT] [--keep-data]
    bench.py --endpoints H:P[,H:P...] [--cacert FILE] ...  # running abcd members (TLS: their CA)
    bench.py --target etcd --endpoints H:P[,...] [--etcdbench PATH] ...
    bench.py --target pysyncobj --pysyncobj-python PATH ...  # PySyncObj, as a reference point
    bench.py --compare a.json b.json [--plot FILE.png]    # one table (and plot) from result files

Without --endpoints it starts a fresh local cluster (temporary data dirs, free ports,
fsync on) and stops it afterwards.  abcd is driven through the pipelined /v1/session
channel (or plain HTTP with --http); etcd through its v3 JSON gateway, or through its
native Go client when an `etcdbench` binary is given.  PySyncObj (not durable: its log
stays in memory) runs under an interpreter that has it, its load generated inside the
leader's process.  See docs/performance.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
