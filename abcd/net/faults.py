"""Fault injection: partitions, loss and latency, as operators on the peer streams.

The node runs its outbound batches `(dest, messages)` through `faults_outbound` before
the transport and its inbound batches `(source, messages)` through `faults_inbound`
before the core, so a test (or `POST /v1/admin/faults` on a node started with
`--enable-faults`) can cut links, lose messages and delay them without touching the
transport.  Raft must stay safe under all of these; only liveness may suffer.

One `Faults` object is shared and mutable: the operators read its current settings
for every batch, so a change takes effect on the next batch and `heal()` restores a
clean network.  Randomness comes only from its seeded RNG, so a failing run can be
replayed.  The operators work at batch granularity (one Rx item per frame, never one
per message), which keeps them cheap enough to leave in the pipeline.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

Batch = tuple[int, Sequence[Any]]


class Faults:
    """The network faults one node applies to its own links."""

    __slots__ = ("partition", "delay_ms", "jitter_ms", "drop_rate", "rng", "dropped_by_partition", "dropped_by_loss")

    def __init__(
        self,
        partition: frozenset[int] = frozenset(),
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        drop_rate: float = 0.0,
        *,
        seed: int | None = 0,
    ) -> None:
        # Peers this node can neither send to nor hear from.
        self.partition = frozenset(partition)
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        # Probability that any one message is lost.
        self.drop_rate = drop_rate
        self.rng = random.Random(seed)
        self.dropped_by_partition = 0
        self.dropped_by_loss = 0
        _check(self.partition, delay_ms, jitter_ms, drop_rate)

    @property
    def active(self) -> bool:
        return bool(self.partition) or self.delay_ms > 0 or self.jitter_ms > 0 or self.drop_rate > 0

    def configure(self, body: Any) -> None:
        """Replace the settings from a `POST /v1/admin/faults` body; ValueError says what is wrong.

        Fields left out are reset, so each request states the whole fault setting.
        """
        if not isinstance(body, dict):
            raise ValueError(f"faults must be a JSON object, got {type(body).__name__}")
        unknown = sorted(set(body) - {"partition", "delay_ms", "jitter_ms", "drop_rate"})
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        partition = body.get("partition", [])
        if not isinstance(partition, list) or any(type(p) is not int or p < 0 for p in partition):
            raise ValueError(f"partition must be a list of node ids (non-negative integers), got {partition!r}")
        numbers = {}
        for name in ("delay_ms", "jitter_ms", "drop_rate"):
            value = body.get(name, 0)
            if type(value) not in (int, float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            numbers[name] = float(value)
        _check(frozenset(partition), numbers["delay_ms"], numbers["jitter_ms"], numbers["drop_rate"])
        self.partition = frozenset(partition)
        self.delay_ms, self.jitter_ms, self.drop_rate = numbers["delay_ms"], numbers["jitter_ms"], numbers["drop_rate"]

    def heal(self) -> None:
        self.partition = frozenset()
        self.delay_ms = self.jitter_ms = self.drop_rate = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": sorted(self.partition),
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "drop_rate": self.drop_rate,
            "dropped_by_partition": self.dropped_by_partition,
            "dropped_by_loss": self.dropped_by_loss,
        }

    def apply(self, peer: int, messages: Sequence[Any]) -> list[Any]:
        """The messages of one batch to or from `peer` that survive partition and loss."""
        if peer in self.partition:
            self.dropped_by_partition += len(messages)
            return []
        if self.drop_rate <= 0:
            return list(messages)
        rng, rate = self.rng, self.drop_rate
        kept = [message for message in messages if rng.random() >= rate]
        self.dropped_by_loss += len(messages) - len(kept)
        return kept

    def sample_delay_seconds(self) -> float:
        """delay ± jitter, never negative; independent per batch, so batches may reorder."""
        delay = self.delay_ms
        if self.jitter_ms > 0:
            delay += self.rng.uniform(-self.jitter_ms, self.jitter_ms)
        return max(0.0, delay) / 1000.0


def _check(partition: frozenset[int], delay_ms: float, jitter_ms: float, drop_rate: float) -> None:
    if any(type(p) is not int or p < 0 for p in partition):
        raise ValueError(f"partition must hold node ids (non-negative integers), got {sorted(partition, key=str)}")
    if not (math.isfinite(delay_ms) and delay_ms >= 0):
        raise ValueError(f"delay_ms must be a finite number >= 0, got {delay_ms}")
    if not (math.isfinite(jitter_ms) and jitter_ms >= 0):
        raise ValueError(f"jitter_ms must be a finite number >= 0, got {jitter_ms}")
    if not 0 <= drop_rate <= 1:
        raise ValueError(f"drop_rate must be between 0 and 1, got {drop_rate}")


def _faults_operator(
    faults: Faults, scheduler: abc.SchedulerBase | None
) -> Callable[[Observable[Batch]], Observable[Batch]]:
    def operator(source: Observable[Batch]) -> Observable[Batch]:
        def subscribe(observer: abc.ObserverBase[Batch], subscribe_scheduler: abc.SchedulerBase | None = None):
            timer = scheduler or subscribe_scheduler
            pending = CompositeDisposable()
            completed = False

            def deliver_later(batch: Batch, delay: float) -> None:
                if timer is None:
                    observer.on_error(ValueError("faults with a delay need a scheduler"))
                    return
                slot = SingleAssignmentDisposable()
                pending.add(slot)

                def deliver(_scheduler: Any, _state: Any) -> None:
                    pending.remove(slot)
                    observer.on_next(batch)
                    # Completion waits for the batches still in flight (Rx grammar:
                    # nothing may follow on_completed).
                    if completed and not len(pending):
                        observer.on_completed()

                slot.disposable = timer.schedule_relative(delay, deliver)

            def on_next(batch: Batch) -> None:
                peer, messages = batch
                kept = faults.apply(peer, messages)
                if not kept:
                    return
                delay = faults.sample_delay_seconds()
                if delay <= 0:
                    observer.on_next((peer, kept))
                else:
                    deliver_later((peer, kept), delay)

            def on_error(error: Exception) -> None:
                pending.dispose()
                observer.on_error(error)

            def on_completed() -> None:
                nonlocal completed
                completed = True
                if not len(pending):
                    observer.on_completed()

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return CompositeDisposable(subscription, pending)

        return reactivex.create(subscribe)

    return operator


def faults_outbound(
    faults: Faults, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[Batch]], Observable[Batch]]:
    """Operator on `(dest, messages)` batches about to be sent.

    Batches to a partitioned peer vanish, each message is lost with probability
    `drop_rate`, and survivors are delayed by delay±jitter on `scheduler` (by default
    the scheduler given at subscribe).
    """
    return _faults_operator(faults, scheduler)


def faults_inbound(
    faults: Faults, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[Batch]], Observable[Batch]]:
    """Operator on `(source, messages)` batches just received; the same faults, seen
    from the receiving side (a partitioned peer is not heard)."""
    return _faults_operator(faults, scheduler)
