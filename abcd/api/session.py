"""`GET /v1/session`: the pipelined client channel (docs/api.md).

Each client frame is a JSON list of requests (objects with an `id`); each server
frame a JSON list of responses `{"id", "status", "body"}`, in any order and grouping
(abcd/session_protocol.py reads and writes them; this module moves the bytes).  The
requests of a frame are handed to the node together, up to SLICE per loop turn, so
its writes become one proposal per slice; answers that complete in the same pipeline
step leave in one frame, written at the end of that step.

A bad request gets its 400 answer and the session stays open.  A frame that is not a
JSON list of objects closes the session with a reason (1007 invalid JSON, 1003 not a
list of objects).  `?forwarded=1` marks a follower's link to the leader: its requests
are never forwarded again.

When auth is on, the caller is the one of the upgrade request (an `Authorization:
Bearer` header, `?token=`, or a verified client certificate: api/auth.py), checked
again for every frame, so an expired token or a deleted user is refused at once; a
request may carry its own `"auth": token`, which wins (a follower's link passes on each
client's token so; a client may renew its token without reconnecting).
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import aiohttp
import loguru
from aiohttp import web

from ..net.eager import start_eagerly
from ..net.transport import close_reason
from ..node.auth import Credential
from ..session_protocol import AUTH_FIELD, MAX_REQUEST_FRAME_BYTES, SessionProtocolError, SessionServer
from .auth import credential_of
from .jsonio import NODE, WEBSOCKETS, query_parameters, require_websocket

# Requests of one frame handed to the node per loop turn: a big frame goes in slices,
# so the first slice's AppendEntries leave (and followers start writing) while the
# leader still prepares the next.  Clients in lockstep (every answer of a commit
# arrives together, so do their next requests) otherwise keep every stage waiting
# for the whole frame: c=256 writes 11,366 -> 14,170/s, c=64 7,565 -> 9,587/s
# (tools/bench.py, medians of 3 interleaved runs; 16 and 32 did worse).
SLICE = 64


class _Replies:
    """Answers waiting to be sent: every answer a pipeline step completes goes out in one
    frame, written at the end of that step (node.call_after_step), not by a task a loop
    turn later.  A frame held up by backpressure keeps the next ones waiting behind it."""

    def __init__(self, ws: web.WebSocketResponse, node, protocol: SessionServer) -> None:
        self._ws = ws
        self._node = node
        self._protocol = protocol
        self._queue = protocol.answer
        self._flush_due = False
        self._sending: asyncio.Task | None = None  # a frame waiting on backpressure
        self.closed = False

    def answer(self, request_id: Any, response) -> None:
        if self.closed:
            return
        self._queue(request_id, response.status, response.body)
        if not self._flush_due and self._sending is None:
            self._flush_due = True
            self._node.call_after_step(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self.closed or self._sending is not None:
            return
        frame = self._protocol.data_to_send()
        if frame is None:
            return
        try:
            self._sending = start_eagerly(self._ws.send_frame(frame, aiohttp.WSMsgType.TEXT))
        except (ConnectionError, RuntimeError):
            self.closed = True
            return
        if self._sending is not None:
            self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        self._sending = None
        if task.cancelled() or task.exception() is not None:
            self.closed = True
            return
        self._flush()  # what was answered while it waited

    def close(self) -> None:
        self.closed = True
        if self._sending is not None:
            self._sending.cancel()


def _by_token(items: list[dict], credential: Credential) -> list[tuple[Credential, list[dict]]]:
    """The items in runs of the same caller: an item's own "auth" token (taken out of
    it) or else the connection's `credential`."""
    runs: list[tuple[Credential, list[dict]]] = []
    for item in items:
        token = item.pop(AUTH_FIELD, None)
        own = credential if token is None else Credential(token if type(token) is str else "")
        if runs and runs[-1][0] == own:
            runs[-1][1].append(item)
        else:
            runs.append((own, [item]))
    return runs


@query_parameters("forwarded", "token")
async def handle_session(request: web.Request) -> web.WebSocketResponse:
    require_websocket(request, "the pipelined client channel")
    node = request.app[NODE]
    forwarded = request.query.get("forwarded") == "1"
    credential = credential_of(request, query_token=True)
    ws = web.WebSocketResponse(max_msg_size=MAX_REQUEST_FRAME_BYTES, compress=False, heartbeat=30.0)
    await ws.prepare(request)
    sockets: set = request.app[WEBSOCKETS]
    sockets.add(ws)
    protocol = SessionServer()
    replies = _Replies(ws, node, protocol)
    answer = replies.answer
    try:
        async for message in ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            try:
                items = protocol.receive(message.data)
            except SessionProtocolError as e:
                await ws.close(code=e.close_code, message=close_reason(str(e)))
                break
            runs = (
                _by_token(items, credential)
                if forwarded or any(AUTH_FIELD in item for item in items)
                else [(credential, items)]
            )
            for own, run in runs:
                for start in range(0, len(run), SLICE):
                    if start:
                        await asyncio.sleep(0)  # one loop turn: the previous slice's step runs
                    node.handle_many(
                        [(item, partial(answer, item.get("id"))) for item in run[start : start + SLICE]],
                        forwarded=forwarded,
                        credential=own,
                    )
    except Exception:
        loguru.logger.exception("session handler failed")
    finally:
        # Answers still to come have nowhere to go.
        replies.close()
        sockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws
