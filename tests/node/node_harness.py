"""An in-process node on 127.0.0.1 for API tests: real WAL, real server, fast timers."""
from __future__ import annotations

import asyncio
import os
from typing import Awaitable, Callable

import aiohttp

from abcd.api.app import Server, bind_socket
from abcd.node.config import NodeConfig
from abcd.node.identity import bootstrap, load_meta
from abcd.node.node import Node


class LocalNode:
    """A node serving HTTP; a data dir that already holds a node is resumed (a restart).

    `wait_healthy=False` returns as soon as the node serves, for a node that cannot
    lead on its own (its configuration names peers that are not there)."""

    def __init__(self, data_dir: str, *, wait_healthy: bool = True, **options) -> None:
        self.data_dir = data_dir
        self.wait_healthy = wait_healthy
        self.options = options
        self.node: Node | None = None
        self.server: Server | None = None
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> "LocalNode":
        sock = bind_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        config = NodeConfig(
            name=f"test-{port}",
            data_dir=self.data_dir,
            port=port,
            advertise=f"127.0.0.1:{port}",
            heartbeat_ms=10,
            election_timeout_ms=50,
            **self.options,
        )
        meta = load_meta(self.data_dir) or bootstrap(self.data_dir, config.name, config.advertise, port)
        self.node = Node(config, meta)
        await self.node.start()
        self.server = Server(self.node, sock)
        await self.server.start()
        self.http = aiohttp.ClientSession()
        if self.wait_healthy:
            await wait_until(lambda: self.node.healthy(), "the node to lead and apply its log")
        return self

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.node is not None:
            await self.node.stop()
        if self.server is not None:
            await self.server.stop()

    async def call(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        async with self.http.request(method, self.base + path, **kwargs) as reply:
            return reply.status, await reply.json(content_type=None)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


def run_with_node(tmp_path, body: Callable[[LocalNode], Awaitable[None]], timeout: float = 30.0, **options) -> None:
    async def main() -> None:
        local = LocalNode(os.fspath(tmp_path / "node"), **options)
        try:
            await local.start()
            await asyncio.wait_for(body(local), timeout)
        finally:
            await local.stop()

    asyncio.run(main())
