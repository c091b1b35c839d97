#!/usr/bin/env python3
"""How fast is the pure Raft core?  No network, no disk: only the reducer's own cost.

    python tools/bench_core.py [--batch 100] [--seconds 3] [--runs 3]

A 3-node cluster in one process: the leader takes proposals in batches, messages
and storage acknowledgements are delivered at once, and we count entries applied
on every node.  Also reports the deterministic simulator's events per second.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from abcd.raft.core import RaftCore  # noqa: E402
from abcd.raft.messages import Persisted, Propose, Tick  # noqa: E402
from abcd.sim.runner import run_seed  # noqa: E402


def committed_entries_per_second(batch: int, seconds: float, nodes: int = 3) -> float:
    ids = list(range(1, nodes + 1))
    cores = {i: RaftCore(i, voters=ids, seed=i) for i in ids}
    queue: deque = deque()
    applied = dict.fromkeys(ids, 0)

    def run(node_id, record):
        for m in record.messages:
            queue.append((m.dest, m))
        if record.persist is not None:
            queue.append((node_id, Persisted(record.persist.seq)))
        applied[node_id] += len(record.committed)

    def drain():
        while queue:
            dest, event = queue.popleft()
            run(dest, cores[dest].step(event))

    while not any(c.is_leader() for c in cores.values()):
        for i in ids:
            run(i, cores[i].step(Tick()))
        drain()
    leader = next(c for c in cores.values() if c.is_leader())
    command = b"x" * 100
    commands = (command,) * batch
    start_applied = min(applied.values())
    t0 = time.perf_counter()
    tag = 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            tag += 1
            run(leader.id, leader.step(Propose(tag, commands)))
            drain()
    elapsed = time.perf_counter() - t0
    return (min(applied.values()) - start_applied) / elapsed


def simulator_events_per_second(seeds: int = 20) -> float:
    t0 = time.perf_counter()
    events = sum(run_seed(seed, nodes=3, steps=2000).events for seed in range(1, seeds + 1))
    return events / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=100, help="proposals per step")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    rates = [committed_entries_per_second(args.batch, args.seconds) for _ in range(args.runs)]
    single = [committed_entries_per_second(1, args.seconds / 2) for _ in range(args.runs)]
    sims = [simulator_events_per_second() for _ in range(args.runs)]
    print(f"core, 3 nodes, batches of {args.batch}: {statistics.median(rates):,.0f} committed entries/s (median of {args.runs})")
    print(f"core, 3 nodes, one entry per step:   {statistics.median(single):,.0f} committed entries/s")
    print(f"simulator (3 nodes, all faults):      {statistics.median(sims):,.0f} events/s")


if __name__ == "__main__":
    main()
