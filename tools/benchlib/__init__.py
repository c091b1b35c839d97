"""The pieces of `tools/bench.py`, abcd's load generator and benchmark report.

    options   command line → BenchOptions (all validation happens here)
    stats     percentiles, medians over repetitions
    workload  keys, fixed-size random values, the operation mix
    drivers   the client loops (session channel, plain HTTP, etcd JSON gateway)
    workers   client processes running those loops, started once per invocation
    procstat  CPU time of processes and of the machine, read from /proc
    cluster   a fresh local abcd cluster, or running endpoints (abcd or etcd)
    etcd_native  the external `etcdbench` binary (etcd's native Go client)
    pysyncobj_target  a local PySyncObj cluster and its benchmark loop (--target pysyncobj)
    pysyncobj_node    one PySyncObj node, run by the interpreter that has pysyncobj
    runner    repetitions × concurrency levels → results
    report    the table, the progress line, the JSON file
    plot      throughput and p99 against concurrency (matplotlib, if installed)
"""
