"""Periodic events for watchers of `/v1/events`: the node's status and its traffic.

While at least one watcher is connected, every 250 ms a `status` event (the
`/v1/status` body with its `time`) and every 100 ms a `messages` event (the messages
sent and received since the last one, counted per peer and kind by traffic.py; none
when there were none), after the coalesced traces held back since the last one
(tracelog.py: AdvanceCommitIndex at most every 100 ms).  The timers start when the first watcher subscribes
(EventHub.on_active) and stop at their next turn once the last one has left, so a
node nobody watches runs no timer and counts nothing.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from .events import EventHub
from .traffic import Traffic

STATUS_INTERVAL = 0.25
MESSAGES_INTERVAL = 0.1


class LiveEvents:
    def __init__(
        self,
        hub: EventHub,
        *,
        node_id: int,
        status: Callable[[], dict[str, Any]],
        traffic: Traffic,
        loop: asyncio.AbstractEventLoop,
        logger,
        clock: Callable[[], float] = time.time,
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self._hub = hub
        self._node_id = node_id
        self._status = status
        self._traffic = traffic
        self._loop = loop
        self._logger = logger
        self._clock = clock
        self._flush = flush  # the trace log's coalesced events held back (tracelog.py)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False

    @property
    def running(self) -> bool:
        return bool(self._timers)

    def start(self) -> None:
        """A watcher arrived: publish periodically (no-op if already doing so)."""
        if self._timers or self._closed:
            return
        self._traffic.clear()  # counts left from an earlier watcher are stale
        self._timers["status"] = self._loop.call_later(STATUS_INTERVAL, self._publish_status)
        self._timers["messages"] = self._loop.call_later(MESSAGES_INTERVAL, self._publish_messages)

    def close(self) -> None:
        self._closed = True
        self._stop()

    def _stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._traffic.clear()

    def status_event(self) -> dict[str, Any]:
        return {"type": "status", "time": self._clock(), **self._status()}

    def _publish_status(self) -> None:
        if not self._hub.active:
            self._stop()
            return
        try:
            self._hub.publish(self.status_event())
        except Exception as error:  # a watcher's view must never stop the node
            self._logger.opt(exception=error).error("publishing the status event failed")
        self._timers["status"] = self._loop.call_later(STATUS_INTERVAL, self._publish_status)

    def _publish_messages(self) -> None:
        if not self._hub.active:
            self._stop()
            return
        self._flush()
        sent, received = self._traffic.take()
        if sent or received:
            self._hub.publish(
                {"type": "messages", "time": self._clock(), "node": self._node_id, "sent": sent, "received": received}
            )
        self._timers["messages"] = self._loop.call_later(MESSAGES_INTERVAL, self._publish_messages)
