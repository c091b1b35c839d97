#!/usr/bin/env python3
"""What does the node's pipeline cost per step, apart from the step itself?

    python tools/bench_pipeline.py [--steps 20000] [--sinks 11] [--runs 5]

One input list per event-loop turn goes through the real `Pipeline` (merge,
batch_per_turn, map, share) with a core step that does nothing and sinks that do
nothing, so what is timed is the plumbing every step pays: at one client, a leader
steps about three times per write and a follower twice.  Two wirings, alternated
in the same run:

- node:      as a node wires it (the flush scheduled with the loop's call_soon, the
             sinks called in turn by one subscriber);
- rx-plain:  the flush scheduled through the AsyncIOScheduler and every sink its
             own subscriber.

The loop is uvloop's when it is installed, as under `python -m abcd`.  Prints the
microseconds per step (median of the runs) and an empty loop turn for scale.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reactivex.scheduler.eventloop import AsyncIOScheduler  # noqa: E402

from abcd.node.pipeline import Pipeline  # noqa: E402


async def per_step(wiring: str, steps: int, sinks: int, on_sink=None) -> float:
    """Seconds per step; `on_sink(i)`, if given, is called by sink i for each step."""
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop)
    seen = 0

    def last(effects: list) -> None:
        nonlocal seen
        seen += 1

    def noted(i: int, sink):
        def run(effects: list) -> None:
            on_sink(i)
            sink(effects)

        return run

    handlers = [lambda effects: None for _ in range(sinks - 1)] + [last]
    if on_sink is not None:
        handlers = [noted(i, sink) for i, sink in enumerate(handlers)]
    if wiring == "node":
        pipeline = Pipeline(lambda events: events, tick_seconds=3600.0, call_soon=loop.call_soon)
        pipeline.start(scheduler, handlers)
    else:
        pipeline = Pipeline(lambda events: events, tick_seconds=3600.0)
        effects = pipeline.build(scheduler)
        for handler in handlers:
            effects.subscribe(handler, scheduler=scheduler)
    while not pipeline.started():
        await asyncio.sleep(0)
    start = time.perf_counter()
    for i in range(steps):
        pipeline.on_frame(2, [i])
        await asyncio.sleep(0)  # the turn ends: the batch is flushed and stepped
    while seen < steps:
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    pipeline.stop()
    return elapsed / steps


async def empty_turn(steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        await asyncio.sleep(0)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--sinks", type=int, default=11, help="a node has 11 sinks")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    results: dict[str, list[float]] = {"node": [], "rx-plain": [], "empty turn": []}
    for _ in range(args.runs):
        for wiring in ("node", "rx-plain"):
            results[wiring].append(run(per_step(wiring, args.steps, args.sinks)))
        results["empty turn"].append(run(empty_turn(args.steps)))
    for name, values in results.items():
        print(f"{name:10s} {statistics.median(values) * 1e6:6.1f} us per step   runs: "
              + " ".join(f"{v * 1e6:.1f}" for v in values))
    print(f"rx-plain / node: {statistics.median(results['rx-plain']) / statistics.median(results['node']):.2f}x")


if __name__ == "__main__":
    main()
