"""The peer transport: Raft messages between nodes over aiohttp websockets.

Theory of operation.  Every node dials every peer it talks to: one outbound websocket
per peer carries this node's messages to it, and the peer's own connection back
carries the replies.  Connections are one-way, so there is no question of which side
owns a link, and a reconnect on one side never disturbs the other direction.

Outbound, `send` gets one step's messages for a peer.  While the link is up and idle
they are encoded and written at once, as one frame, in the caller's loop turn
(eager.py): no task wake-up between a step and its frames.  Otherwise (dialing, or
a frame still waiting on backpressure) they go to the peer's bounded outbox, and the
peer's writer task sends everything queued at that moment as one frame, so the
batch size follows the load (performance.md, rule 1).  Frames leave in the order
`send` was called either way.  When the outbox is full the
oldest messages are dropped and counted: Raft tolerates loss and retries on its own
schedule, and a slow or dead peer must never block the others or hold unbounded
memory.  A failed or closed connection is redialed with exponential backoff and jitter;
queued messages wait in the (bounded) outbox meanwhile.

Inbound, `handle_inbound` serves `GET /v1/raft`: the first frame must be a hello for
this cluster (and token, if one is configured), then each frame is decoded strictly.
Anything malformed closes that connection with a close code and a reason, logged on
both sides; the node itself keeps running.  Valid frames go to `on_frame(peer, msgs)`.

Close codes (docs/protocol.md):
    4000 bad hello       the first frame is not a valid hello (or none came in time)
    4001 wrong cluster   the hello names another cluster id
    4002 bad frame       a frame after the hello is malformed, spoofs its source or is
                         addressed to another node
    4003 bad token       the cluster token is missing or wrong
    4004 removed         the dialing node was removed from the cluster (a committed
                         configuration no longer names it); it is told so, and
                         `on_removed` on its side hears it
"""
from __future__ import annotations

import asyncio
import hmac
import random
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import loguru
from aiohttp import web

from ..backoff import Backoff
from ..raft.messages import Message
from .codec import DEFAULT_MAX_FRAME_BYTES, EncodeCache, FrameError, decode_frame, decode_hello, encode_frame
from .codec import encode_hello, parse_address
from .eager import start_eagerly

RAFT_PATH = "/v1/raft"

CLOSE_BAD_HELLO = 4000
CLOSE_WRONG_CLUSTER = 4001
CLOSE_BAD_FRAME = 4002
CLOSE_BAD_TOKEN = 4003
CLOSE_REMOVED = 4004

# A websocket close reason must fit a 125-byte control frame, 2 of which are the code.
_MAX_CLOSE_REASON = 123


def close_reason(text: str) -> bytes:
    return text.encode("utf-8")[:_MAX_CLOSE_REASON].decode("utf-8", "ignore").encode("utf-8")


@dataclass(slots=True, eq=False)
class _Peer:
    node_id: int
    address: str
    url: str
    # Invariant: len(outbox) <= outbox_limit; the deque's maxlen drops the oldest.
    outbox: deque[Message]
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.Task[None] | None = None
    connected: bool = False
    # The open link, while the writer task holds one; `send` writes to it directly
    # when the outbox is empty and no frame is in flight (`busy`), keeping frame order.
    ws: Any = None
    busy: bool = False
    dropped: int = 0
    sent_frames: int = 0
    sent_messages: int = 0
    reconnects: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Inbound:
    connections: int = 0
    received_frames: int = 0
    received_messages: int = 0


class PeerTransport:
    """Sends and receives batches of Raft messages; see the module docstring.

    Create it, and call `set_peer`, from within the running event loop.
    """

    def __init__(
        self,
        node_id: int,
        cluster_id: str,
        *,
        token: str | None,
        address: str,
        on_frame: Callable[[int, list[Message]], None],
        on_peer_lost: Callable[[int], None] | None = None,
        is_removed: Callable[[int], bool] | None = None,
        on_removed: Callable[[int, str], None] | None = None,
        on_hello: Callable[[int, str], None] | None = None,
        outbox_limit: int = 4096,
        logger: Any = loguru.logger,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        heartbeat: float | None = 5.0,
        hello_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if outbox_limit < 1:
            raise ValueError(f"outbox_limit must be at least 1, got {outbox_limit}")
        parse_address(address)
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.address = address
        self._token = token
        self._on_frame = on_frame
        # Told when the last connection a peer dialed to us breaks: a crashed process
        # resets its sockets at once, long before a missed heartbeat would tell.
        self._on_peer_lost = on_peer_lost
        # Whether a node id was removed from the cluster (its connections are refused
        # with 4004), and what to do when a peer says that this node was.
        self._is_removed = is_removed
        self._on_removed = on_removed
        # Told of each accepted hello: (the peer's node id, the address it advertises),
        # so that a peer the node's member table does not name yet can be answered.
        self._on_hello = on_hello
        self._outbox_limit = outbox_limit
        self._logger = logger
        self._session = session
        self._owns_session = session is None
        # A callable is asked at each dial, so that reloaded certificates apply to the next one.
        self._ssl_context = ssl_context
        self._max_frame_bytes = max_frame_bytes
        self._heartbeat = heartbeat
        self._hello_timeout = hello_timeout
        self._connect_timeout = connect_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._hello = encode_hello(cluster_id, node_id, token, address)
        # Shared by all writers: an entry sent to several followers is encoded once.
        self._encode_cache = EncodeCache()
        self._peers: dict[int, _Peer] = {}
        self._writers: set[asyncio.Task[None]] = set()
        # Open inbound connections, with the peer's node id once its hello is accepted.
        self._inbound_sockets: dict[web.WebSocketResponse, int | None] = {}
        self._inbound: dict[int, _Inbound] = {}
        self._unknown_dest_dropped = 0
        self._rejected_connections = 0
        self._closed = False

    # ------------------------------------------------------------------ membership

    def set_peer(self, node_id: int, address: str) -> None:
        """Talk to `node_id` at "host:port"; a new address redials, keeping the outbox."""
        if node_id == self.node_id:
            raise ValueError(f"node {node_id} is this node; it is not its own peer")
        host, port = parse_address(address)
        if self._closed:
            raise RuntimeError("the transport is closed")
        peer = self._peers.get(node_id)
        if peer is not None and peer.address == address:
            return
        scheme = "wss" if self._ssl_context is not None else "ws"
        url = f"{scheme}://{host}:{port}{RAFT_PATH}"
        if peer is None:
            peer = _Peer(node_id, address, url, deque(maxlen=self._outbox_limit))
            self._peers[node_id] = peer
        else:
            self._stop_writer(peer)
            peer.address, peer.url = address, url
        self._start_writer(peer)

    def remove_peer(self, node_id: int) -> None:
        """Forget `node_id`: its writer stops and its queued messages are discarded."""
        peer = self._peers.pop(node_id, None)
        if peer is not None:
            self._stop_writer(peer)

    @property
    def peers(self) -> dict[int, str]:
        return {node_id: peer.address for node_id, peer in self._peers.items()}

    # ------------------------------------------------------------------ outbound

    def send(self, dest: int, messages: list[Message]) -> None:
        """Queue `messages` for `dest` without blocking; full outboxes drop their oldest."""
        peer = self._peers.get(dest)
        if peer is None:
            self._unknown_dest_dropped += len(messages)
            return
        if peer.ws is not None and not peer.busy and not peer.outbox and self._send_now(peer, messages):
            return
        outbox = peer.outbox
        before = len(outbox)
        outbox.extend(messages)
        lost = before + len(messages) - len(outbox)
        if lost:
            peer.dropped += lost
        peer.wakeup.set()

    def _send_now(self, peer: _Peer, messages: list[Message]) -> bool:
        """Encode and write one frame in this turn; False leaves the batch to the writer."""
        try:
            frame = encode_frame(messages, self._encode_cache)
        except (TypeError, ValueError):
            return False  # the writer reports it, with the batch's size
        if len(frame) > self._max_frame_bytes:
            return False  # the writer splits it
        try:
            pending = start_eagerly(peer.ws.send_bytes(frame))
        except Exception:
            # The link broke under us; the writer's watcher sees the close and redials.
            # Raft resends what was lost here, as it does for any dropped message.
            peer.dropped += len(messages)
            peer.ws = None
            peer.wakeup.set()
            return True
        peer.sent_frames += 1
        peer.sent_messages += len(messages)
        if pending is not None:  # backpressure: later batches queue until it is written
            peer.busy = True
            self._writers.add(pending)  # close() cancels it with the writers
            pending.add_done_callback(self._writers.discard)
            pending.add_done_callback(lambda task: self._eager_send_done(peer, task))
        return True

    def _eager_send_done(self, peer: _Peer, task: asyncio.Task) -> None:
        peer.busy = False
        if not task.cancelled() and task.exception() is not None:
            peer.ws = None
        peer.wakeup.set()  # the writer sends what queued behind it

    def _start_writer(self, peer: _Peer) -> None:
        task = asyncio.get_running_loop().create_task(self._run_writer(peer), name=f"raft-writer-{peer.node_id}")
        peer.writer = task
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)

    def _stop_writer(self, peer: _Peer) -> None:
        if peer.writer is not None:
            peer.writer.cancel()
            peer.writer = None
        peer.connected = False
        peer.ws = None

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Bounds the dial and the upgrade handshake; aiohttp lifts the read timeout
            # of the connection once it is a websocket (the heartbeat watches it then).
            timeout = aiohttp.ClientTimeout(
                total=None, connect=self._connect_timeout, sock_connect=self._connect_timeout,
                sock_read=self._connect_timeout,
            )
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def _dial_context(self) -> ssl.SSLContext | bool:
        context = self._ssl_context
        if context is None:
            return True
        return context if isinstance(context, ssl.SSLContext) else context()

    async def _run_writer(self, peer: _Peer) -> None:
        backoff = Backoff(self._backoff_initial, self._backoff_max, self._rng)
        attempts = 0
        while True:
            if attempts:
                peer.reconnects += 1
            attempts += 1
            try:
                close_code = await self._connect_and_drain(peer)
                # A link that worked is redialed at once; one the peer refuses (wrong
                # cluster, bad token) keeps backing off, so it is not hammered.
                if close_code is None or close_code < 4000:
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                self._note_error(peer, f"{type(error).__name__}: {error}", warn=False)
            except Exception as error:  # a bug must not silently kill the link to a peer
                self._logger.exception("writer to node {} failed; redialing", peer.node_id)
                peer.last_error = f"{type(error).__name__}: {error}"
            finally:
                peer.connected = False
            await asyncio.sleep(backoff.next_delay())

    async def _connect_and_drain(self, peer: _Peer) -> int | None:
        """Dial, say hello, send batches until the connection ends; its close code, if any."""
        session = self._client_session()
        async with session.ws_connect(
            peer.url, heartbeat=self._heartbeat, compress=0, ssl=self._dial_context()
        ) as ws:
            await ws.send_bytes(self._hello)
            peer.connected = True
            peer.ws = ws
            peer.last_error = None
            self._logger.info("connected to node {} at {}", peer.node_id, peer.address)
            watcher = asyncio.get_running_loop().create_task(self._watch_for_close(ws, peer))
            try:
                while True:
                    if not peer.outbox or peer.busy:
                        peer.wakeup.clear()
                        await peer.wakeup.wait()
                    if watcher.done():
                        return watcher.result()  # what is still queued goes out after the redial
                    if peer.outbox and not peer.busy:
                        await self._send_batch(ws, peer)
            finally:
                peer.ws = None
                watcher.cancel()

    async def _send_batch(self, ws: aiohttp.ClientWebSocketResponse, peer: _Peer) -> None:
        batch = list(peer.outbox)
        peer.outbox.clear()
        await self._send_messages(ws, peer, batch)

    async def _send_messages(self, ws: aiohttp.ClientWebSocketResponse, peer: _Peer, batch: list[Message]) -> None:
        try:
            frame = encode_frame(batch, self._encode_cache)
        except (TypeError, ValueError) as error:
            peer.dropped += len(batch)
            self._logger.error("cannot encode a batch of {} messages for node {}: {}", len(batch), peer.node_id, error)
            return
        if len(frame) > self._max_frame_bytes:
            # The receiver would refuse it; halves are sent instead (rare: the core
            # bounds the bytes of entries per AppendEntries).
            if len(batch) == 1:
                peer.dropped += 1
                self._logger.error(
                    "dropping a {} for node {}: {} bytes encoded, over the frame limit of {}",
                    type(batch[0]).__name__, peer.node_id, len(frame), self._max_frame_bytes,
                )
                return
            half = len(batch) // 2
            await self._send_messages(ws, peer, batch[:half])
            await self._send_messages(ws, peer, batch[half:])
            return
        peer.busy = True
        try:
            await ws.send_bytes(frame)
        except BaseException:
            peer.dropped += len(batch)
            raise
        finally:
            peer.busy = False
        peer.sent_frames += 1
        peer.sent_messages += len(batch)

    async def _watch_for_close(self, ws: aiohttp.ClientWebSocketResponse, peer: _Peer) -> int | None:
        """Read the outbound connection only to see it close (and answer pings); the close code."""
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.CLOSE:
                    code, reason = message.data, message.extra or ""
                    text = f"closed by node {peer.node_id}: {code} {reason}".rstrip()
                    # 4000-4004 are refusals (wrong cluster, bad token...): worth a warning.
                    self._note_error(peer, text, warn=code >= 4000)
                    if code == CLOSE_REMOVED and self._on_removed is not None:
                        self._on_removed(peer.node_id, reason)
                    return code
                if message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    self._note_error(peer, f"connection to node {peer.node_id} closed", warn=False)
                    return None
                if message.type == aiohttp.WSMsgType.ERROR:
                    self._note_error(peer, f"connection to node {peer.node_id} failed: {ws.exception()}", warn=False)
                    return None
                # Peers never send data on a connection they accepted; ignore it.
        finally:
            peer.wakeup.set()

    def _note_error(self, peer: _Peer, text: str, *, warn: bool) -> None:
        # Log a failure when it changes, not on every redial of a peer that is down.
        if text != peer.last_error:
            if warn:
                self._logger.warning("link to node {} at {}: {}", peer.node_id, peer.address, text)
            else:
                self._logger.info("link to node {} at {}: {}", peer.node_id, peer.address, text)
        peer.last_error = text

    # ------------------------------------------------------------------ inbound

    async def handle_inbound(self, request: web.Request) -> web.WebSocketResponse:
        """The `GET /v1/raft` handler: handshake, then deliver each frame to on_frame."""
        if not web.WebSocketResponse().can_prepare(request).ok:
            message = f"{RAFT_PATH} is the peer transport over a websocket; a plain HTTP request cannot use it"
            return web.json_response({"error": message, "code": "bad_request"}, status=400)
        ws = web.WebSocketResponse(
            # timeout bounds the closing handshake, so shutting down never waits long on a dead peer.
            timeout=2.0, heartbeat=self._heartbeat, compress=False, max_msg_size=self._max_frame_bytes,
        )
        await ws.prepare(request)
        if self._closed:
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"node shutting down")
            return ws
        self._inbound_sockets[ws] = None
        try:
            peer_id = await self._handshake(ws, request.remote)
            if peer_id is not None:
                self._inbound_sockets[ws] = peer_id
                await self._receive_frames(ws, peer_id)
        finally:
            self._inbound_sockets.pop(ws, None)
        return ws

    async def _reject(self, ws: web.WebSocketResponse, code: int, reason: str, who: str) -> None:
        self._rejected_connections += 1
        self._logger.warning("closing peer connection from {} ({}): {}", who, code, reason)
        await ws.close(code=code, message=close_reason(reason))

    async def _handshake(self, ws: web.WebSocketResponse, remote: str | None) -> int | None:
        """The peer's node id if its hello is acceptable; otherwise close and None."""
        who = remote or "unknown address"
        try:
            first = await ws.receive(timeout=self._hello_timeout)
        except asyncio.TimeoutError:
            await self._reject(ws, CLOSE_BAD_HELLO, f"no hello within {self._hello_timeout:g} s", who)
            return None
        if first.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return None
        if first.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            await self._reject(ws, CLOSE_BAD_HELLO, f"expected a hello frame, got {first.type.name}", who)
            return None
        try:
            hello = decode_hello(first.data)
        except FrameError as error:
            await self._reject(ws, CLOSE_BAD_HELLO, str(error), who)
            return None
        who = f"node {hello.node_id} at {who}"
        if hello.cluster_id != self.cluster_id:
            reason = f"wrong cluster id: expected {self.cluster_id}, got {hello.cluster_id}"
            await self._reject(ws, CLOSE_WRONG_CLUSTER, reason, who)
            return None
        if self._token is not None:
            if hello.token is None:
                await self._reject(ws, CLOSE_BAD_TOKEN, "missing cluster token", who)
                return None
            if not hmac.compare_digest(hello.token.encode("utf-8"), self._token.encode("utf-8")):
                await self._reject(ws, CLOSE_BAD_TOKEN, "wrong cluster token", who)
                return None
        if self._is_removed is not None and self._is_removed(hello.node_id):
            await self._reject(ws, CLOSE_REMOVED, self._removed_reason(hello.node_id), who)
            return None
        self._inbound.setdefault(hello.node_id, _Inbound()).connections += 1
        self._logger.info("accepted peer connection from {} (advertises {})", who, hello.address)
        if self._on_hello is not None:
            try:
                self._on_hello(hello.node_id, hello.address)
            except Exception:
                self._logger.exception("on_hello failed for node {}", hello.node_id)
        return hello.node_id

    async def _receive_frames(self, ws: web.WebSocketResponse, peer_id: int) -> None:
        counters = self._inbound[peer_id]
        try:
            async for frame in ws:
                if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    if frame.type == aiohttp.WSMsgType.ERROR:
                        self._logger.warning("peer connection from node {} failed: {}", peer_id, ws.exception())
                    return
                try:
                    messages = decode_frame(frame.data, max_frame_bytes=self._max_frame_bytes)
                    self._check_routing(messages, peer_id)
                except FrameError as error:
                    await self._reject(ws, CLOSE_BAD_FRAME, str(error), f"node {peer_id}")
                    return
                counters.received_frames += 1
                counters.received_messages += len(messages)
                if messages:
                    try:
                        self._on_frame(peer_id, messages)
                    except Exception:
                        self._logger.exception("on_frame failed for a frame from node {}", peer_id)
        finally:
            counters.connections -= 1
            if counters.connections == 0 and not self._closed and self._on_peer_lost is not None:
                try:
                    self._on_peer_lost(peer_id)
                except Exception:
                    self._logger.exception("on_peer_lost failed for node {}", peer_id)

    def _removed_reason(self, node_id: int) -> str:
        return f"node {node_id} was removed from cluster {self.cluster_id}"

    def refuse_removed(self) -> None:
        """Close, with 4004, the inbound connections of every peer `is_removed` now names:
        a removed node learns it from the first member that knows its removal committed."""
        if self._is_removed is None:
            return
        for ws, peer_id in list(self._inbound_sockets.items()):
            if peer_id is not None and not ws.closed and self._is_removed(peer_id):
                self._rejected_connections += 1
                reason = self._removed_reason(peer_id)
                self._logger.warning("closing the connection of node {}: {}", peer_id, reason)
                asyncio.get_running_loop().create_task(ws.close(code=CLOSE_REMOVED, message=close_reason(reason)))

    def _check_routing(self, messages: list[Message], peer_id: int) -> None:
        for position, message in enumerate(messages):
            if message.source != peer_id:
                raise FrameError(
                    f"message {position}: source {message.source} is not the sender's node id {peer_id} (spoofed)"
                )
            if message.dest != self.node_id:
                raise FrameError(f"message {position}: dest {message.dest} is not this node ({self.node_id})")

    # ------------------------------------------------------------------ lifecycle

    def stats(self) -> dict[str, Any]:
        return {
            "peers": {
                node_id: {
                    "address": peer.address,
                    "connected": peer.connected,
                    "queued": len(peer.outbox),
                    "dropped": peer.dropped,
                    "sent_frames": peer.sent_frames,
                    "sent_messages": peer.sent_messages,
                    "reconnects": peer.reconnects,
                    "last_error": peer.last_error,
                }
                for node_id, peer in self._peers.items()
            },
            "inbound": {
                node_id: {
                    "connections": counters.connections,
                    "received_frames": counters.received_frames,
                    "received_messages": counters.received_messages,
                }
                for node_id, counters in self._inbound.items()
            },
            "unknown_dest_dropped": self._unknown_dest_dropped,
            "rejected_connections": self._rejected_connections,
        }

    async def close(self) -> None:
        """Stop every writer, close every peer connection, and the session if it is ours."""
        self._closed = True
        for peer in list(self._peers.values()):
            self._stop_writer(peer)
        writers = list(self._writers)
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        going_away = aiohttp.WSCloseCode.GOING_AWAY
        await asyncio.gather(
            *(ws.close(code=going_away, message=b"node shutting down") for ws in list(self._inbound_sockets)),
            return_exceptions=True,
        )
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
