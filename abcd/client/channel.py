"""The client's `/v1/session` websockets: the requests of a loop turn leave in one frame,
answers are matched to their callers by id (`abcd.session_protocol.SessionClient`; this
module only moves its bytes).  An endpoint that does not serve `/v1/session` (404, 405,
501 on the upgrade) is used over plain HTTP instead."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from ..session_protocol import MAX_ANSWER_FRAME_BYTES, SESSION_PATH, SessionClient, SessionProtocolError
from .endpoints import connection_failure
from .errors import Unreachable

# Handshake answers of a node that does not serve a websocket endpoint at all.
NOT_SERVED = frozenset((404, 405, 501))


class SessionChannel:
    """One `/v1/session` websocket: requests in frames, responses matched by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, base: str) -> None:
        self.ws = ws
        self.base = base
        self.token: str | None = None  # sent with each request (the client renews it)
        self.closed_reason: str | None = None
        self._protocol = SessionClient()
        self._wakeup = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())
        self._reader = asyncio.create_task(self._read_loop())

    async def call(self, request: dict) -> tuple[int, dict]:
        """(status, body) of `request`; Unreachable if the session ends first."""
        if self.closed_reason is not None:
            raise Unreachable(self.closed_reason, maybe_sent=False)
        future = asyncio.get_running_loop().create_future()
        request_id = self._protocol.request(request, future, self.token)
        # The writer wakes up on the next loop turn and takes every request queued by
        # then: one frame per turn.
        self._wakeup.set()
        try:
            return await future
        finally:
            if not future.done():
                # Cancelled (timed out): not sent after all if it is still queued, and
                # its answer dropped if it comes.
                self._protocol.abandon(request_id)

    async def _write_loop(self) -> None:
        while self.closed_reason is None:
            await self._wakeup.wait()
            self._wakeup.clear()
            frame = self._protocol.data_to_send()
            if frame is None:
                continue
            try:
                await self._send(frame)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as e:
                self._close(f"sending to {self.base} failed: {e or type(e).__name__}")
                return

    async def _send(self, data: bytes) -> None:
        # send_frame (aiohttp >= 3.11) writes orjson's bytes as a text frame without a
        # decode/encode round trip.
        send_frame = getattr(self.ws, "send_frame", None)
        if send_frame is not None:
            await send_frame(data, aiohttp.WSMsgType.TEXT)
        else:
            await self.ws.send_str(data.decode())

    async def _read_loop(self) -> None:
        reason = f"{self.base} closed the session"
        try:
            async for msg in self.ws:
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                try:
                    answers = self._protocol.receive(msg.data)
                except SessionProtocolError as e:
                    _deliver(e.answers)
                    reason = f"{self.base} sent a malformed session frame ({e})"
                    break
                _deliver(answers)
            else:
                if self.ws.close_code is not None:
                    reason = f"{self.base} closed the session (code {self.ws.close_code})"
        except (aiohttp.ClientError, ConnectionError) as e:
            reason = f"session with {self.base} broke: {e or type(e).__name__}"
        self._close(reason)
        await self.ws.close()

    def _close(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        unsent, sent = self._protocol.close()
        for maybe_sent, futures in ((False, unsent), (True, sent)):
            for future in futures:
                if not future.done():
                    future.set_exception(Unreachable(reason, maybe_sent=maybe_sent))
        self._wakeup.set()  # let the writer see the close and end

    async def aclose(self) -> None:
        self._close("the client closed the session")
        for task in (self._writer, self._reader):
            task.cancel()
        await asyncio.gather(self._writer, self._reader, return_exceptions=True)
        await self.ws.close()


def _deliver(answers: list) -> None:
    for future, status, body in answers:
        if not future.done():
            future.set_result((status, body if type(body) is dict else {}))


class Channels:
    """A client's sessions, one per endpoint: opened on first use (concurrent callers
    share the connect), reopened once closed.  A node that does not serve `/v1/session`
    has none: its calls go over plain HTTP."""

    def __init__(self, http: Callable[[], aiohttp.ClientSession]) -> None:
        self._http = http
        self._channels: dict[str, SessionChannel] = {}
        self._connecting: dict[str, asyncio.Task] = {}
        self._unsupported: set[str] = set()

    async def get(self, base: str) -> SessionChannel | None:
        """The open session to `base` (connecting sends nothing), or None for plain
        HTTP; Unreachable when it cannot be opened."""
        if base in self._unsupported:
            return None
        channel = self._channels.get(base)
        if channel is not None and channel.closed_reason is None:
            return channel
        task = self._connecting.get(base)
        if task is None:
            task = asyncio.create_task(self._open(base))
            self._connecting[base] = task
            task.add_done_callback(lambda t: self._connect_done(base, t))
        # Shielded: a caller that times out must not cancel the connect others await.
        return await asyncio.shield(task)

    def _connect_done(self, base: str, task: asyncio.Task) -> None:
        if self._connecting.get(base) is task:
            del self._connecting[base]
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not reported

    async def _open(self, base: str) -> SessionChannel | None:
        url = base.replace("http", "ws", 1) + SESSION_PATH
        try:
            ws = await self._http().ws_connect(url, max_msg_size=MAX_ANSWER_FRAME_BYTES, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            if e.status in NOT_SERVED:
                self._unsupported.add(base)  # an older node: plain HTTP from now on
                return None
            raise Unreachable(f"{base} refused the session ({e.status} {e.message})", maybe_sent=False) from None
        except aiohttp.ClientError as e:
            raise Unreachable(f"cannot reach {base}: {connection_failure(e)}", maybe_sent=False) from None
        old = self._channels.pop(base, None)
        if old is not None:
            await old.aclose()
        channel = SessionChannel(ws, base)
        self._channels[base] = channel
        return channel

    async def close(self) -> None:
        for task in self._connecting.values():
            task.cancel()
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(ch.aclose() for ch in channels), return_exceptions=True)
