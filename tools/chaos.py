#!/usr/bin/env python3
"""A Jepsen-style test of a real abcd cluster, and a failover timer.

    chaos.py [run] [--nodes 3] [--duration 60 | --minutes M] [--seed N] [--workers 5]
                   [--readers-per-node 1] [--keys 4] [--faults all|KIND,...] [--timeout 2]
                   [--heartbeat-ms 50] [--election-timeout-ms 500] [--history FILE] [--json FILE]
                   [--data-dir DIR] [--snapshot-count N] [--unsafe-stale-reads]
    chaos.py soak [the same] [--minutes 60] [--sample-every 10]
    chaos.py failover [--nodes 3] [--tries 10] [--writers 4] [--heartbeat-ms 100] [--election-timeout-ms 1000]

`run`: clients put, get, delete and compare-and-swap a few keys over abcd.client while
a nemesis, on a schedule drawn from the seed, kills members (-9) and restarts them,
pauses them (SIGSTOP) past an election timeout, partitions the leader or a minority
away, cuts one member's messages one way, adds latency and loss, transfers
leadership, and replaces members (wiped, refused their old identity, removed, added
back as new members, directly or as a learner promoted later).  Then
every fault is healed, every member restarted, every key read; the whole history is
checked for linearizability (abcd.check) and for lost acknowledged writes.  Exit 0 only
if it is linearizable with nothing lost.  See docs/testing.md.

`soak`: the same, an hour by default, sampling every member's memory, descriptors,
asyncio tasks and data dir size, reported at the end.

`failover`: kill the leader while writes run, and time how long the cluster stays
unwritable.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chaoslib.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
