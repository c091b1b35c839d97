"""Forwarding to the leader: a follower passes on writes and linearizable reads.

A follower keeps one websocket to the leader's `/v1/session` (the pipelined client
channel of docs/api.md) open and relays requests over it, batched per loop turn
like any client frame, so a client never has to find the leader itself.  The
connection is opened with `?forwarded=1`: a node never forwards a forwarded request
again, so two nodes that each believe the other leads cannot bounce a request
between them forever (the second answers 503 instead).

If the link fails, requests not yet sent go back to the node (`on_unsent`), which
holds them until a leader is known again (a dead leader is usually replaced within an
election timeout), and so do requests the other side answered 503 (not applied: it
is no longer the leader), and reads in flight.  Writes already sent when the link
broke have an unknown outcome: they get 504, which says so.  An answer frame that
breaks the session protocol (abcd/session_protocol.py) ends the link the same way.
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any, Callable

import aiohttp
import loguru

from ..session_protocol import FORWARDED_QUERY, SESSION_PATH, SessionClient, SessionProtocolError
from . import responses
from .responses import Response

FORWARDED_HEADER = "X-Abcd-Forwarded"
# A join (POST /v1/members) presents the cluster's --cluster-token in this header.
CLUSTER_TOKEN_HEADER = "X-Abcd-Cluster-Token"


OnUnsent = Callable[[list], None]


def _forwarded_form(item: Any) -> dict:
    """The session request for `item`: when the client's token goes along, the user a
    write was checked for is left out (the leader checks the token itself and sets it)."""
    request = item.request
    if item.token is None:
        return request
    return {k: v for k, v in request.items() if k != "auth_user" and k != "auth_revision"}


def _unanswered(item: Any) -> bool:
    return not item.waiter.done


class LeaderLink:
    """One kept-open session to one leader address.

    Items are the node's ClientWrite/ClientRead: `.request` is sent, `.waiter` answered.
    The frames, ids and matching of answers are `SessionClient`'s; this class moves them.
    """

    def __init__(
        self, session: aiohttp.ClientSession, address: str, on_unsent: OnUnsent, *, logger=loguru.logger, tls=None
    ) -> None:
        self.address = address
        self._tls = tls  # abcd.tls.TlsContexts: wss, with this node's peer certificate
        self._session = session
        self._on_unsent = on_unsent
        self._logger = logger
        # No size limit on the leader's answers: they are the answers to our own requests.
        self._protocol = SessionClient(max_frame_bytes=sys.maxsize)
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"leader-link-{address}")
        self.closed = False

    @property
    def busy(self) -> bool:
        return self._protocol.busy

    def send(self, item: Any) -> None:
        if self.closed:
            self._on_unsent([item])
            return
        self._protocol.request(_forwarded_form(item), item, item.token)
        self._wakeup.set()

    async def _run(self) -> None:
        scheme = "wss" if self._tls is not None else "ws"
        url = f"{scheme}://{self.address}{SESSION_PATH}?{FORWARDED_QUERY}"
        protocol = self._protocol
        try:
            ssl = self._tls.dial if self._tls is not None else True
            async with self._session.ws_connect(url, compress=0, max_msg_size=0, ssl=ssl) as ws:
                reader = asyncio.get_running_loop().create_task(self._read(ws))
                try:
                    while not reader.done():
                        if not protocol.has_unsent:
                            self._wakeup.clear()
                            waiting = asyncio.ensure_future(self._wakeup.wait())
                            await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
                            waiting.cancel()
                            continue
                        # Requests whose callers stopped waiting while queued are not sent.
                        frame = protocol.data_to_send(_unanswered)
                        if frame is not None:
                            await ws.send_bytes(frame)
                finally:
                    reader.cancel()
        except asyncio.CancelledError:
            pass
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, RuntimeError) as e:
            self._logger.info("forwarding link to the leader at {} failed: {}", self.address, e)
        finally:
            self._close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return
            try:
                answers = self._protocol.receive(frame.data)
            except SessionProtocolError as e:
                self._logger.warning("the leader at {} sent an invalid session frame: {}", self.address, e)
                self._deliver(e.answers)
                return
            self._deliver(answers)

    def _deliver(self, answers: list) -> None:
        retry_later = []
        for item, status, body in answers:
            if status == 503:
                # Every 503 means "not applied" (the node we reached is no longer
                # the leader, or lost the entry to a new one): safe to try again
                # once this node knows the new leader.
                retry_later.append(item)
            else:
                item.waiter.resolve(Response(status, body))
        if retry_later:
            self._on_unsent(retry_later)

    def _close(self) -> None:
        self.closed = True
        unsent, in_flight = self._protocol.close()
        # A read can always be asked again; a write already sent may have been applied.
        retry = [item for item in unsent if not item.waiter.done]
        retry += [item for item in in_flight if not item.waiter.is_write]
        for item in in_flight:
            if item.waiter.is_write:
                item.waiter.resolve(
                    responses.error(
                        504,
                        "timeout",
                        f"the connection to the leader at {self.address} broke after the write was sent; "
                        "the outcome is unknown (retry with the same X-Request-Id to apply it at most once)",
                    )
                )
        if retry:
            self._on_unsent(retry)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class Forwarder:
    """Links to leaders by address; a link no longer needed is closed once idle."""

    def __init__(
        self, on_unsent: OnUnsent, *, logger=loguru.logger, request_timeout: float = 10.0, tls=None
    ) -> None:
        self._on_unsent = on_unsent
        self._tls = tls
        self._logger = logger
        self._links: dict[str, LeaderLink] = {}
        self._session: aiohttp.ClientSession | None = None
        self._request_timeout = request_timeout
        self.forwarded = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=2.0, sock_connect=2.0)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def forward(self, address: str, item: Any) -> None:
        link = self._links.get(address)
        if link is None or link.closed:
            link = self._links[address] = LeaderLink(
                self._client(), address, self._on_unsent, logger=self._logger, tls=self._tls
            )
        for other, old in list(self._links.items()):
            if other != address and not old.busy:
                del self._links[other]
                asyncio.get_running_loop().create_task(old.close())
        self.forwarded += 1
        link.send(item)

    async def call(
        self, address: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Forward one HTTP call (membership changes) to the leader at `address`."""
        url = f"{'https' if self._tls is not None else 'http'}://{address}{path}"
        try:
            async with self._client().request(
                method,
                url,
                ssl=self._tls.dial if self._tls is not None else True,
                json=body,
                headers={**(headers or {}), FORWARDED_HEADER: "1"},
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            ) as reply:
                try:
                    payload = await reply.json(content_type=None)
                except ValueError:
                    payload = {"error": f"the leader answered {reply.status} without JSON", "code": "bad_gateway"}
                retry = responses.RETRY_AFTER_SECONDS if reply.status == 503 else None
                return Response(reply.status, payload, retry)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            return responses.no_leader(f"cannot reach the leader at {address} ({type(e).__name__})")

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
