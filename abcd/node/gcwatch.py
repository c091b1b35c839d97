"""Pauses of the garbage collector: counted for /metrics, logged when long.

A collection stops the whole process, event loop included, for as long as it
traverses the objects of the generations it collects.  A node under load keeps many
young objects alive for a while (log entries until a snapshot compacts them, the
MVCC history until it is trimmed, client sessions), so its young collections take
tens of milliseconds: the largest pauses of a busy node after snapshots
(docs/performance.md).  `install` hooks one watch into `gc.callbacks` for the
process; each node's collector reads it (metrics.py).
"""
from __future__ import annotations

import gc
import time
from typing import Callable

# A collection that stops the process at least this long is logged (etcd warns about
# applies that took over 100 ms in the same spirit).
SLOW_PAUSE_SECONDS = 0.1
GENERATIONS = 3

OnSlow = Callable[[int, float, int], None]  # (generation, seconds, objects collected)


class GCWatch:
    """A gc callback: collections and pause time per generation, and the longest pause."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter, on_slow: OnSlow | None = None) -> None:
        self._clock = clock
        self.on_slow = on_slow
        self.collections = [0] * GENERATIONS
        self.pause_seconds = [0.0] * GENERATIONS
        self.longest_seconds = 0.0
        self._started: float | None = None

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        started, self._started = self._started, None
        if started is None:  # installed during a collection
            return
        pause = self._clock() - started
        generation = info.get("generation", GENERATIONS - 1)
        self.collections[generation] += 1
        self.pause_seconds[generation] += pause
        if pause > self.longest_seconds:
            self.longest_seconds = pause
        if pause >= SLOW_PAUSE_SECONDS and self.on_slow is not None:
            self.on_slow(generation, pause, info.get("collected", 0))


_installed: GCWatch | None = None


def install(on_slow: OnSlow | None = None) -> GCWatch:
    """The process's watch, hooked into gc.callbacks on the first call; a later call
    only replaces `on_slow`."""
    global _installed
    if _installed is None:
        _installed = GCWatch(on_slow=on_slow)
        gc.callbacks.append(_installed)
    elif on_slow is not None:
        _installed.on_slow = on_slow
    return _installed


def installed() -> GCWatch | None:
    return _installed
