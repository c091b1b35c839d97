"""Fault injection: partitions, one-way cuts, loss and latency, as operators on the peer streams.

The node runs its outbound batches `(dest, messages)` through `faults_outbound` before
the transport and its inbound batches `(source, messages)` through `faults_inbound`
before the core, so a test (or `POST /v1/admin/faults` on a node started with
`--enable-faults`) can cut links, lose messages and delay them without touching the
transport.  Raft must stay safe under all of these; only liveness may suffer.

One `Faults` object is shared and mutable: the operators read its current settings
for every batch, so a change takes effect on the next batch and `heal()` restores a
clean network.  Randomness comes only from its seeded RNG, so a failing run can be
replayed.

Three scopes: `partition`, `delay_ms`, `jitter_ms` and `drop_rate` apply to every link
in both directions; `cut_to` drops only what this node sends to those peers (a one-way
cut: it still hears them); `links` gives one peer's link its own delay, jitter and loss
(both directions at this node), instead of the node-wide ones.  The operators work at batch granularity (one Rx item per frame, never one
per message), which keeps them cheap enough to leave in the pipeline.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

Batch = tuple[int, Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Link:
    """Latency and loss of the link to one peer (used instead of the node-wide ones)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    drop_rate: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {"delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms, "drop_rate": self.drop_rate}


NO_LINK_FAULTS = Link()
_FIELDS = ("partition", "cut_to", "links", "delay_ms", "jitter_ms", "drop_rate")
_LINK_FIELDS = ("delay_ms", "jitter_ms", "drop_rate")


class Faults:
    """The network faults one node applies to its own links."""

    __slots__ = (
        "partition", "cut_to", "links", "delay_ms", "jitter_ms", "drop_rate", "rng",
        "dropped_by_partition", "dropped_by_cut", "dropped_by_loss",
    )

    def __init__(
        self,
        partition: frozenset[int] = frozenset(),
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        drop_rate: float = 0.0,
        *,
        cut_to: frozenset[int] = frozenset(),
        links: dict[int, Link] | None = None,
        seed: int | None = 0,
    ) -> None:
        # Peers this node can neither send to nor hear from.
        self.partition = frozenset(partition)
        # Peers this node's messages never reach (it still hears them).
        self.cut_to = frozenset(cut_to)
        # Per-peer latency and loss, in place of the node-wide settings below.
        self.links: dict[int, Link] = dict(links or {})
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        # Probability that any one message is lost.
        self.drop_rate = drop_rate
        self.rng = random.Random(seed)
        self.dropped_by_partition = 0
        self.dropped_by_cut = 0
        self.dropped_by_loss = 0
        _check_ids("partition", self.partition)
        _check_ids("cut_to", self.cut_to)
        _check(delay_ms, jitter_ms, drop_rate)
        for peer, link in self.links.items():
            _check(link.delay_ms, link.jitter_ms, link.drop_rate, where=f"links[\"{peer}\"].")

    @property
    def active(self) -> bool:
        return (
            bool(self.partition) or bool(self.cut_to) or bool(self.links)
            or self.delay_ms > 0 or self.jitter_ms > 0 or self.drop_rate > 0
        )

    def configure(self, body: Any) -> None:
        """Replace the settings from a `POST /v1/admin/faults` body; ValueError says what is wrong.

        Fields left out are reset, so each request states the whole fault setting.
        Nothing changes unless the whole body is valid.
        """
        if not isinstance(body, dict):
            raise ValueError(f"faults must be a JSON object, got {type(body).__name__}")
        unknown = sorted(set(body) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)} (known: {', '.join(_FIELDS)})")
        partition = _ids_field(body, "partition")
        cut_to = _ids_field(body, "cut_to")
        delay_ms, jitter_ms, drop_rate = _numbers(body, "")
        links_body = body.get("links", {})
        if not isinstance(links_body, dict):
            raise ValueError(f"links must be an object {{\"<peer id>\": {{\"delay_ms\", \"jitter_ms\", \"drop_rate\"}}}}, got {links_body!r}")
        links: dict[int, Link] = {}
        for key, link_body in links_body.items():
            if not (key.isdigit() and key.isascii()):
                raise ValueError(f"links keys must be node ids (non-negative integers as strings), got {key!r}")
            where = f"links[\"{key}\"]"
            if not isinstance(link_body, dict):
                raise ValueError(f"{where} must be a JSON object, got {type(link_body).__name__}")
            unknown = sorted(set(link_body) - set(_LINK_FIELDS))
            if unknown:
                raise ValueError(f"unknown fields in {where}: {', '.join(unknown)} (known: {', '.join(_LINK_FIELDS)})")
            links[int(key)] = Link(*_numbers(link_body, where + "."))
        self.partition, self.cut_to, self.links = partition, cut_to, links
        self.delay_ms, self.jitter_ms, self.drop_rate = delay_ms, jitter_ms, drop_rate

    def heal(self) -> None:
        self.partition = self.cut_to = frozenset()
        self.links = {}
        self.delay_ms = self.jitter_ms = self.drop_rate = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": sorted(self.partition),
            "cut_to": sorted(self.cut_to),
            "links": {str(peer): link.to_json() for peer, link in sorted(self.links.items())},
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "drop_rate": self.drop_rate,
            "dropped_by_partition": self.dropped_by_partition,
            "dropped_by_cut": self.dropped_by_cut,
            "dropped_by_loss": self.dropped_by_loss,
        }

    def apply(self, peer: int, messages: Sequence[Any], *, outbound: bool = False) -> list[Any]:
        """The messages of one batch to (`outbound`) or from `peer` that survive
        partition, cut and loss."""
        if peer in self.partition:
            self.dropped_by_partition += len(messages)
            return []
        if outbound and peer in self.cut_to:
            self.dropped_by_cut += len(messages)
            return []
        link = self.links.get(peer)
        rate = self.drop_rate if link is None else link.drop_rate
        if rate <= 0:
            return list(messages)
        rng = self.rng
        kept = [message for message in messages if rng.random() >= rate]
        self.dropped_by_loss += len(messages) - len(kept)
        return kept

    def sample_delay_seconds(self, peer: int | None = None) -> float:
        """delay ± jitter of `peer`'s link (or the node-wide one), never negative;
        independent per batch, so batches may reorder."""
        link = self.links.get(peer) if peer is not None else None
        delay, jitter = (self.delay_ms, self.jitter_ms) if link is None else (link.delay_ms, link.jitter_ms)
        if jitter > 0:
            delay += self.rng.uniform(-jitter, jitter)
        return max(0.0, delay) / 1000.0


def _ids_field(body: dict, name: str) -> frozenset[int]:
    ids = body.get(name, [])
    if not isinstance(ids, list) or any(type(p) is not int or p < 0 for p in ids):
        raise ValueError(f"{name} must be a list of node ids (non-negative integers), got {ids!r}")
    return frozenset(ids)


def _numbers(body: dict, where: str) -> tuple[float, float, float]:
    """(delay_ms, jitter_ms, drop_rate) of a body, checked; `where` prefixes the names in errors."""
    numbers = []
    for name in _LINK_FIELDS:
        value = body.get(name, 0)
        if type(value) not in (int, float):
            raise ValueError(f"{where}{name} must be a number, got {value!r}")
        numbers.append(float(value))
    _check(*numbers, where=where)
    return numbers[0], numbers[1], numbers[2]


def _check_ids(name: str, ids: frozenset[int]) -> None:
    if any(type(p) is not int or p < 0 for p in ids):
        raise ValueError(f"{name} must hold node ids (non-negative integers), got {sorted(ids, key=str)}")


def _check(delay_ms: float, jitter_ms: float, drop_rate: float, *, where: str = "") -> None:
    if not (math.isfinite(delay_ms) and delay_ms >= 0):
        raise ValueError(f"{where}delay_ms must be a finite number >= 0, got {delay_ms}")
    if not (math.isfinite(jitter_ms) and jitter_ms >= 0):
        raise ValueError(f"{where}jitter_ms must be a finite number >= 0, got {jitter_ms}")
    if not 0 <= drop_rate <= 1:
        raise ValueError(f"{where}drop_rate must be between 0 and 1, got {drop_rate}")


def _faults_operator(
    faults: Faults, scheduler: abc.SchedulerBase | None, *, outbound: bool
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
                kept = faults.apply(peer, messages, outbound=outbound)
                if not kept:
                    return
                delay = faults.sample_delay_seconds(peer)
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

    Batches to a partitioned or cut peer vanish, each message is lost with probability
    `drop_rate` (the link's, if it has its own), and survivors are delayed by
    delay±jitter on `scheduler` (by default the scheduler given at subscribe).
    """
    return _faults_operator(faults, scheduler, outbound=True)


def faults_inbound(
    faults: Faults, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[Batch]], Observable[Batch]]:
    """Operator on `(source, messages)` batches just received; the same faults, seen
    from the receiving side (a partitioned peer is not heard; a `cut_to` peer is)."""
    return _faults_operator(faults, scheduler, outbound=False)
