"""Running async client tests from plain sync tests (no pytest-asyncio)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fake_cluster import FakeCluster

from abcd.client import Client


def run(coro: Awaitable, timeout: float = 20.0):
    """Run one coroutine to completion on a fresh loop, failing if it hangs."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def with_cluster(nodes: int, body: Callable[[FakeCluster], Awaitable], timeout: float = 20.0):
    """Start a fake cluster of `nodes`, run `body(cluster)`, stop the cluster."""
    async def main():
        async with FakeCluster(nodes) as cluster:
            return await body(cluster)
    return run(main(), timeout)


def client_for(cluster: FakeCluster, *extra_endpoints: str, timeout: float = 3.0, **kw) -> Client:
    return Client([*extra_endpoints, *(n.endpoint for n in cluster.nodes)], timeout=timeout, **kw)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def request_ids(node) -> list[str]:
    """The request ids of the writes a node received, over the session or HTTP."""
    ids = [r["request_id"] for frame in node.frames for r in frame if "request_id" in r]
    return ids + [rid for _m, _p, rid in node.http if rid]
