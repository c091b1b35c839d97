"""The node's event stream (`GET /v1/events`): traces and log records for watchers.

Each subscriber has a bounded queue (Rx has no backpressure, nor does this): when a
slow watcher's queue is full, its oldest events are dropped and counted, so a stuck
dashboard can neither block the node nor grow its memory.

`active` is what the hot paths check before doing anything for watchers (building
an event, counting messages): with nobody connected they do nothing else.
`on_active` is called when the first watcher subscribes (the periodic events start).
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

DEFAULT_QUEUE_LIMIT = 2048


class Subscription:
    def __init__(self, limit: int) -> None:
        self.queue: deque[dict[str, Any]] = deque(maxlen=limit)
        self.dropped = 0
        self.wakeup = asyncio.Event()

    def push(self, event: dict[str, Any]) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(event)
        self.wakeup.set()

    async def next_batch(self) -> list[dict[str, Any]]:
        """Everything queued, waiting for at least one event."""
        while not self.queue:
            self.wakeup.clear()
            await self.wakeup.wait()
        batch = list(self.queue)
        self.queue.clear()
        return batch


class EventHub:
    def __init__(self, limit: int = DEFAULT_QUEUE_LIMIT, on_active: Callable[[], None] | None = None) -> None:
        self._limit = limit
        self._subscribers: set[Subscription] = set()
        self.on_active = on_active

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self) -> Subscription:
        sub = Subscription(self._limit)
        first = not self._subscribers
        self._subscribers.add(sub)
        if first and self.on_active is not None:
            self.on_active()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def publish(self, event: dict[str, Any]) -> None:
        for sub in self._subscribers:
            sub.push(event)
