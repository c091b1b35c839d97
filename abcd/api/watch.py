"""`GET /v1/watch?key=K` or `?prefix=P`, `&start_revision=N`: a websocket of changes.

Each server frame is `{"events": [{"type": "put"/"delete", "kv", "prev_kv"}], "revision"}`:
the changes one revision made to the watched keys, in revision order.  With
`start_revision`, the stream begins with the history from that revision on (the
store keeps the last 10,000 revisions or more); without it, with the next change.

History and live changes join without a gap or a duplicate: the history is read
and the store listener registered in the same loop turn, before the first await,
and the applier runs on the loop too.

The watch follows what the answering node has applied: a follower's stream may lag
the leader's by a heartbeat, never skip or reorder a revision.  A watcher that falls
behind by more than `MAX_QUEUED` revisions is closed with 1001 and a reason naming
the revision to resume from (the client resumes with start_revision); so is every
watch when the node shuts down.  Bad parameters and a compacted start revision are
refused before the upgrade, as plain HTTP errors (400).

When auth is on, the caller (an `Authorization: Bearer` header, `?token=` since a
browser's websocket cannot send headers, or a verified client certificate) must be
allowed to read the watched key or prefix when the watch opens: else 401 or 403
before the upgrade.  A watch keeps its stream after that, as etcd's do.

A follower far behind may install the leader's snapshot instead of applying entries
one by one (the store's state is replaced at once).  Each watch then continues from
the snapshot's history, from the first revision it has not sent: still no gap and no
duplicate.  If the snapshot's history no longer reaches back that far (compacted),
the watch is closed with 1001 and the revision to resume from, as for a watcher that
fell behind; resuming there answers `compacted`, as it would on any node.
"""
from __future__ import annotations

import asyncio
from collections import deque
import aiohttp
import orjson
from aiohttp import web

from ..kv import KVError
from ..net.transport import close_reason
from .auth import principal_of
from .jsonio import NODE, WEBSOCKETS, BadInput, error_response, query_int, query_parameters, require_websocket

MAX_QUEUED = 10_000
CLOSE_GOING_AWAY = 1001


class Watcher:
    def __init__(self, key: str | None, prefix: str | None) -> None:
        self.key = key
        self.prefix = prefix
        self.queue: deque[tuple[int, list[dict]]] = deque()
        self.wakeup = asyncio.Event()
        self.overflowed_at: int | None = None  # the first revision that did not fit
        self.close_reason: str | None = None  # set with overflowed_at
        # The first revision this watch has not looked at yet (set when it starts).
        self.next_revision = 1

    def matches(self, event: dict) -> bool:
        name = event["kv"]["key"]
        if self.key is not None:
            return name == self.key
        return name.startswith(self.prefix)

    def on_commit(self, revision: int, events: list) -> None:
        """The store's listener: called for every applied revision that changed something."""
        if self.overflowed_at is not None:
            return
        self.next_revision = revision + 1
        mine = [event for event in events if self.matches(event)]
        if not mine:
            return
        if len(self.queue) >= MAX_QUEUED:
            self._stop(revision, f"watcher fell behind; resume with start_revision={revision}")
        else:
            self.queue.append((revision, mine))
        self.wakeup.set()

    def on_restore(self, store) -> None:
        """The store's state was replaced by a leader's snapshot: queue what this watch
        missed from the snapshot's history, or stop it if that history is compacted."""
        if self.overflowed_at is not None:
            return
        start = self.next_revision
        if store.current_revision < start - 1:
            # Older than what was sent already: going on would repeat revisions.
            self._stop(start, f"the node's state went back to revision {store.current_revision}; "
                              f"resume with start_revision={start}")
        elif store.current_revision >= start:
            try:
                history = store.events_since(start, key=self.key, prefix=self.prefix)
            except KVError:
                self._stop(start, f"the node installed a snapshot whose history starts after revision {start}; "
                                  f"resume with start_revision={start}")
            else:
                self.add_history(history)
                self.next_revision = store.current_revision + 1
        self.wakeup.set()

    def _stop(self, revision: int, reason: str) -> None:
        self.overflowed_at = revision
        self.close_reason = reason

    def add_history(self, history: list[tuple[int, dict]]) -> None:
        for revision, event in history:
            if self.queue and self.queue[-1][0] == revision:
                self.queue[-1][1].append(event)
            else:
                self.queue.append((revision, [event]))


def _parse(request: web.Request) -> tuple[str | None, str | None, int]:
    query = request.query
    key, prefix = query.get("key"), query.get("prefix")
    if (key is None) == (prefix is None):
        raise BadInput("watch needs exactly one of ?key=K or ?prefix=P")
    if key == "":
        raise BadInput("key must be a non-empty string")
    return key, prefix, query_int(request, "start_revision") or 0


def _check_access(request: web.Request, key: str | None, prefix: str | None) -> None:
    """KVError 401/403 unless the caller may read what the watch would show."""
    principal = principal_of(request, query_token=True)
    if principal is not None:
        op = {"op": "get", "key": key} if key is not None else {"op": "range", "prefix": prefix}
        request.app[NODE].store.auth.check(principal.user, op)


@query_parameters("key", "prefix", "start_revision", "token")
async def handle_watch(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    key, prefix, start_revision = _parse(request)
    try:
        _check_access(request, key, prefix)
    except KVError as e:
        return error_response(e.status, e.code, e.message)
    watcher = Watcher(key, prefix)
    store = node.store
    if start_revision:
        try:
            watcher.add_history(store.events_since(start_revision, key=key, prefix=prefix))
        except KVError as e:
            return error_response(e.status, e.code, e.message)
    require_websocket(request, "a stream of changes")  # after the parameters' own errors
    watcher.next_revision = store.current_revision + 1
    store.add_listener(watcher.on_commit)  # same turn as the history: no gap

    def on_restore() -> None:
        watcher.on_restore(store)

    store.add_restore_listener(on_restore)
    try:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
        await ws.prepare(request)
        sockets: set = request.app[WEBSOCKETS]
        sockets.add(ws)
        try:
            await _stream(ws, watcher)
        finally:
            sockets.discard(ws)
        return ws
    finally:
        store.remove_listener(watcher.on_commit)
        store.remove_restore_listener(on_restore)


async def _stream(ws: web.WebSocketResponse, watcher: Watcher) -> None:
    async def drain_incoming() -> None:
        async for _ in ws:  # clients send nothing; this notices the close
            pass

    reader = asyncio.get_running_loop().create_task(drain_incoming())
    try:
        while not ws.closed:
            while watcher.queue:
                revision, events = watcher.queue.popleft()
                await ws.send_frame(orjson.dumps({"events": events, "revision": revision}), aiohttp.WSMsgType.TEXT)
            if watcher.overflowed_at is not None:
                reason = watcher.close_reason or f"resume with start_revision={watcher.overflowed_at}"
                await ws.close(code=CLOSE_GOING_AWAY, message=close_reason(reason))
                return
            watcher.wakeup.clear()
            waiting = asyncio.ensure_future(watcher.wakeup.wait())
            await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                return  # the client went away
    except (ConnectionError, RuntimeError):
        pass
    finally:
        reader.cancel()
        if not ws.closed:
            await ws.close()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/watch", handle_watch)


