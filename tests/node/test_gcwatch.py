"""The garbage-collector watch: pauses per generation, the longest, slow ones reported."""
from __future__ import annotations

import gc

from abcd.node import gcwatch
from abcd.node.gcwatch import SLOW_PAUSE_SECONDS, GCWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def collection(watch: GCWatch, clock: Clock, generation: int, seconds: float, collected: int = 0) -> None:
    watch("start", {"generation": generation})
    clock.now += seconds
    watch("stop", {"generation": generation, "collected": collected, "uncollectable": 0})


def test_pauses_are_summed_per_generation_and_only_slow_ones_are_reported():
    clock, slow = Clock(), []
    watch = GCWatch(clock=clock, on_slow=lambda *args: slow.append(args))
    collection(watch, clock, 0, 0.002)
    collection(watch, clock, 0, 0.003)
    collection(watch, clock, 1, 0.020)
    collection(watch, clock, 2, SLOW_PAUSE_SECONDS + 0.05, collected=7)
    assert watch.collections == [2, 1, 1]
    assert [round(s, 6) for s in watch.pause_seconds] == [0.005, 0.02, round(SLOW_PAUSE_SECONDS + 0.05, 6)]
    assert round(watch.longest_seconds, 6) == round(SLOW_PAUSE_SECONDS + 0.05, 6)
    [(generation, seconds, collected)] = slow
    assert generation == 2 and collected == 7 and seconds >= SLOW_PAUSE_SECONDS


def test_a_stop_without_its_start_is_ignored():
    # Hooked in while a collection was running: its end has no beginning to measure from.
    watch = GCWatch(clock=Clock())
    watch("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    assert watch.collections == [0, 0, 0] and watch.longest_seconds == 0.0


def test_install_hooks_one_watch_into_the_process_and_sees_real_collections():
    first = gcwatch.install()
    try:
        assert gcwatch.install() is first and gc.callbacks.count(first) == 1
        before = first.collections[2]
        gc.collect()
        assert first.collections[2] == before + 1 and first.pause_seconds[2] > 0
        reported = []
        assert gcwatch.install(on_slow=lambda *args: reported.append(args)) is first
        assert first.on_slow is not None
    finally:
        first.on_slow = None
