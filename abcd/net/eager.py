"""Start a coroutine now, in the caller's loop turn, instead of in a task a turn later.

Sending a websocket frame with aiohttp is a coroutine (`send_bytes`) that, unless the
socket is applying backpressure, finishes without ever suspending: it writes to the
transport and returns.  Awaiting it from a writer task costs a task wake-up, one more
loop turn, before the bytes leave; on the path of every write that turn sits between
a leader's step and its AppendEntries, a follower's fsync and its acknowledgement, and
a commit and the client's answer (docs/performance.md).

`start_eagerly(coro)` runs the coroutine at once.  If it finishes, that is all (its
exception, if any, is raised to the caller).  If it suspends, a Task takes it over from
that point, exactly as if it had been awaited there: Python 3.12's `eager_start`,
available on 3.11 and without creating a Task for the common case.
"""
from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine
from typing import Any


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> asyncio.Task | None:
    """Run `coro` until it finishes (None) or first suspends (the Task finishing it)."""
    try:
        suspended_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_resume(coro, suspended_on))


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], suspended_on: Any):
    """Hand what `coro` suspended on to the running Task, then relay until it returns."""
    while True:
        try:
            value = yield suspended_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as error:  # e.g. the Task's cancellation, thrown in at the await
            try:
                suspended_on = coro.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                suspended_on = coro.send(value)
            except StopIteration as stop:
                return stop.value
