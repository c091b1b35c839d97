"""The node's reactive pipeline: inputs merged into the core's step; the record executed.

    inbound  (peer frames)   ─┐
    ticks    (interval)      ─┤
    client_requests          ─┼─► merge ─► batch_per_turn ─► to_events ─► core.step_many ─► StepRecord (shared)
    storage_acks             ─┘                                                                 │
                 ▲                                        view, outbound, WAL, replies, applier, snapshots, log
                 └──────── Persisted(seq), SnapshotTaken ◄── WAL sink (after fsync), snapshotter ───┘

Every item is a list (a frame's messages, one Tick, the requests of a client frame,
one Persisted or SnapshotTaken) and `batch_per_turn` makes one list per loop turn, so
the core steps once per turn whatever the load: the unit that flows is a batch,
never a message.

`core.step_many` mutates the core and returns one StepRecord (raft/record.py); a
`map` over it is the `scan(RaftCore.step)` of architecture.md with the state kept in
the core object.  `share()` matters: without it every subscriber would get its own
copy of the chain and the same events would be stepped several times.

Rx stops at the step.  Reactive operators carry the inputs (merging four sources,
batching per loop turn, the faults); the output is not split into streams.  The
shell executes each record in a fixed order: the sinks are ONE subscriber that
calls them in the order given, each reading its own part of the record (the order
and why it is safe: record.py; node.py wires it).  A Subject per consumer was
measured dearer than the rest of the plumbing together (docs/performance.md, "The
pipeline's own cost"), and a fixed order is what the record's parts need anyway:
the member table before the messages, the messages before the WAL write, the
replies before the applier.

Everything runs on ONE scheduler (the AsyncIOScheduler of the node's loop, or a
TestScheduler in marble tests).  `merge` subscribes to its sources on that
scheduler, i.e. only once the loop runs: `started()` tells when the inputs are
listening, and nothing must be pushed before that (it would be dropped).  Given the
loop's `call_soon`, `batch_per_turn` schedules its flush with it directly rather than
through the scheduler, which wraps each action in three disposables with a lock
each, once per step; marble tests leave it out.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.subject import Subject

from ..net.faults import Faults, faults_inbound
from ..raft.messages import Persisted, Tick
from ..raft.record import StepRecord
from .batching import batch_per_turn

TICK_BATCH = [Tick()]


def _messages_of(frame: tuple[int, list]) -> list:
    return frame[1]

Sink = Callable[[StepRecord], None]


class Pipeline:
    def __init__(
        self,
        step: Callable[[list], StepRecord],
        *,
        tick_seconds: float,
        to_events: Callable[[list], list] = lambda batch: batch,
        faults: Faults | None = None,
        call_soon: Callable[..., Any] | None = None,
        heard: Callable[[int, list], None] | None = None,
    ) -> None:
        self._step = step
        # Called with each peer frame that passed the faults, before it is stepped.
        self._heard = heard
        self._call_soon = call_soon
        self._to_events = to_events
        self._tick_seconds = tick_seconds
        self._faults = faults
        # Inputs.  inbound carries (peer id, messages) as the transport delivers them.
        self.inbound: Subject[tuple[int, list]] = Subject()
        self.client_requests: Subject[list] = Subject()
        # What storage tells the core: Persisted(seq), SnapshotTaken.
        self.storage_acks: Subject[list] = Subject()
        self.ticks: Observable[int] | None = None
        self.records: Observable[StepRecord] | None = None
        self._subscription = CompositeDisposable()
        self.batches = 0
        self.events = 0

    def build(self, scheduler: abc.SchedulerBase) -> Observable[StepRecord]:
        inbound = self.inbound
        if self._faults is not None:
            inbound = inbound.pipe(faults_inbound(self._faults, scheduler))
        inbound_events = inbound.pipe(ops.map(self._messages_heard if self._heard is not None else _messages_of))
        self.ticks = reactivex.interval(self._tick_seconds, scheduler=scheduler).pipe(ops.share())
        tick_events = self.ticks.pipe(ops.map(lambda _: TICK_BATCH))
        self.records = reactivex.merge(inbound_events, tick_events, self.client_requests, self.storage_acks).pipe(
            batch_per_turn(scheduler, call_soon=self._call_soon),
            ops.map(self._step_batch),
            ops.share(),
        )
        return self.records

    def _messages_heard(self, frame: tuple[int, list]) -> list:
        self._heard(frame[0], frame[1])
        return frame[1]

    def _step_batch(self, batch: list) -> StepRecord:
        events = self._to_events(batch)
        self.batches += 1
        self.events += len(events)
        return self._step(events)

    def start(
        self,
        scheduler: abc.SchedulerBase,
        sinks: Sequence[Sink],
        *,
        on_tick: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Subscribe the sinks (in order) and, if given, `on_tick` to the ticks.

        The sinks are one subscriber that calls each in turn with the step's record: a
        Subject delivering to eleven observers cost about as much per step as the rest
        of the plumbing together (docs/performance.md, "The pipeline's own cost")."""
        records = self.build(scheduler)
        sinks = tuple(sinks)

        def each_sink(record: StepRecord) -> None:
            for sink in sinks:
                sink(record)

        self._subscription.add(records.subscribe(each_sink, on_error, scheduler=scheduler))
        if on_tick is not None and self.ticks is not None:
            self._subscription.add(self.ticks.subscribe(on_tick, on_error, scheduler=scheduler))

    def started(self) -> bool:
        """True once every input is subscribed to (pushing earlier would lose items)."""
        return all(s.observers for s in (self.inbound, self.client_requests, self.storage_acks))

    # ------------------------------------------------------------------ feeding

    def on_frame(self, peer: int, messages: list) -> None:
        """The transport's on_frame callback."""
        self.inbound.on_next((peer, messages))

    def push_requests(self, items: list) -> None:
        self.client_requests.on_next(items)

    def persisted(self, seq: int) -> None:
        self.storage_acks.on_next([Persisted(seq)])

    def push_events(self, events: list) -> None:
        """Other news from storage for the core (SnapshotTaken), stepped in the next turn."""
        self.storage_acks.on_next(events)

    def stop(self) -> None:
        self._subscription.dispose()
