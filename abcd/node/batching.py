"""Batch per event-loop turn: the unit that flows through the node's pipeline.

Every input (a peer frame, a tick, a client request, a storage acknowledgement) is a
*list* of items.  `batch_per_turn` concatenates all lists that arrive in one turn of
the event loop and emits them as one list at the start of the next turn, so that
one core step (one Persist, one fsync, one AppendEntries per follower) covers
everything that was ready together (performance.md, rules 1 and 3).

The flush is scheduled with `scheduler.schedule` (no due time): under asyncio that is
`loop.call_soon`, i.e. after the callbacks already queued for this turn; under a
TestScheduler it is the same virtual instant, after the items already scheduled
for it.  So "one turn" means the same thing in production and in marble tests.

A node passes its loop's `call_soon` as well, and the flush is scheduled with it
directly: the same turn, without the scheduler's wrapping of every action in three
disposables (each with a lock), which cost as much as the rest of a step's plumbing
(docs/performance.md, "The pipeline's own cost").
"""
from __future__ import annotations

from typing import Any, Callable

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable


def batch_per_turn(
    scheduler: abc.SchedulerBase | None = None, *, call_soon: Callable[..., Any] | None = None
) -> Callable[[Observable[list]], Observable[list]]:
    """Operator: lists arriving in one loop turn -> one concatenated list, next turn."""

    def operator(source: Observable[list]) -> Observable[list]:
        def subscribe(observer: abc.ObserverBase[list], subscribe_scheduler: abc.SchedulerBase | None = None):
            timer = scheduler or subscribe_scheduler
            if timer is None and call_soon is None:
                raise ValueError("batch_per_turn needs a scheduler (given here or at subscribe)")
            pending: list[Any] = []
            flush_slot = SerialDisposable()
            completed = False

            def flush(_scheduler: Any = None, _state: Any = None) -> None:
                batch = pending.copy()
                pending.clear()
                if batch:
                    observer.on_next(batch)
                if completed:
                    observer.on_completed()

            def on_next(items: list) -> None:
                if not items:
                    return
                if not pending:
                    if call_soon is not None:
                        call_soon(flush)  # a flush after dispose finds the observer detached
                    else:
                        flush_slot.disposable = timer.schedule(flush)
                pending.extend(items)

            def on_error(error: Exception) -> None:
                observer.on_error(error)

            def on_completed() -> None:
                nonlocal completed
                completed = True
                if not pending:
                    observer.on_completed()

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return CompositeDisposable(subscription, flush_slot)

        return reactivex.create(subscribe)

    return operator
