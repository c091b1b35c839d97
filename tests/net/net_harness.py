"""Real transports on 127.0.0.1 for the tests: servers, log capture, waiting with deadlines."""
from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any, Awaitable, Callable

import loguru
from aiohttp import web

from abcd.net import RAFT_PATH, PeerTransport

CLUSTER = "cluster-a"


_open_nodes: list["Node"] = []


def run(test: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    """Run an async test body on a fresh event loop, failing it if it takes too long.

    Nodes the body left open (say, because an assertion failed) are closed afterwards.
    """

    async def bounded() -> None:
        try:
            await asyncio.wait_for(test(), timeout)
        finally:
            while _open_nodes:
                await _open_nodes.pop().close()

    asyncio.run(bounded())


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


def reserve_socket(port: int = 0) -> socket.socket:
    """A bound but not listening socket: dials to its port are refused until a server adopts it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class LogCapture:
    """A loguru logger whose records (for this test only) land in `lines`."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        tag = uuid.uuid4().hex
        self.logger = loguru.logger.bind(net_test=tag)
        self._handler = loguru.logger.add(
            lambda message: self.lines.append(str(message).rstrip("\n")),
            filter=lambda record: record["extra"].get("net_test") == tag,
            format="{level} {message}",
            level="DEBUG",
        )

    def contains(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def close(self) -> None:
        loguru.logger.remove(self._handler)


class Node:
    """One PeerTransport served by a real aiohttp server, recording what it receives."""

    def __init__(self, node_id: int, sock: socket.socket | None = None, **options: Any) -> None:
        self.node_id = node_id
        self.sock = sock or reserve_socket()
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.received: list[tuple[int, list[Any]]] = []
        self.log = LogCapture()
        options.setdefault("token", None)
        options.setdefault("backoff_initial", 0.01)
        options.setdefault("backoff_max", 0.05)
        self.transport = PeerTransport(
            node_id,
            options.pop("cluster_id", CLUSTER),
            address=self.address,
            on_frame=lambda peer, messages: self.received.append((peer, messages)),
            logger=self.log.logger,
            **options,
        )
        self._runner: web.AppRunner | None = None
        self._closed = False
        _open_nodes.append(self)

    @property
    def url(self) -> str:
        return f"ws://{self.address}{RAFT_PATH}"

    def messages_from(self, peer: int) -> list[Any]:
        return [message for source, batch in self.received if source == peer for message in batch]

    async def serve(self) -> "Node":
        app = web.Application()
        app.router.add_get(RAFT_PATH, self.transport.handle_inbound)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        return self

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self in _open_nodes:
            _open_nodes.remove(self)
        await self.transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.sock.close()
        self.log.close()
