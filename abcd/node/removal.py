"""A member removed from its cluster stops, saying so (as etcd's members do).

How it learns it was removed:
* from its own log, when a configuration that no longer names it commits: a leader
  that replicated and committed its own removal (thesis §4.2.2), or a follower that
  applied it;
* from a peer: a member that knows the removal committed closes the removed node's peer
  connections with close code 4004 (abcd/net/transport.py), and refuses new ones.  This
  is how a removed follower learns it: the leader stops replicating to it as soon as it
  appends the entry that removes it, so that follower's own log never shows it, and it
  would otherwise time out and stand for election (as a pre-candidate, harmlessly) for
  ever.

Either way the verdict rests on a committed configuration, and ids are never reused,
so it cannot be wrong.  The node logs why, lets the requests it still holds finish
(their answers, or 503/504 as usual, within the request timeout), then stops as on
SIGTERM; `python -m abcd` exits 0.  Its data dir cannot rejoin (docs/operations.md).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from .config import NodeConfig
    from .pipeline import Pipeline
    from .requests import PendingRequests


class RemovableNode(Protocol):
    """What leaving uses of a node (node.Node is one)."""

    node_id: int
    cluster_id: str
    config: "NodeConfig"
    logger: Any
    loop: asyncio.AbstractEventLoop
    pipeline: "Pipeline"
    requests: "PendingRequests"
    removed: str | None
    stopping: bool

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> asyncio.Future: ...

    async def stop(self) -> None: ...


def leave(node: RemovableNode, how: str) -> None:
    """The node was removed (`how`: how it learned it); stop once its requests are done."""
    if node.removed is not None or node.stopping:
        return
    node.removed = f"node {node.node_id} was removed from cluster {node.cluster_id} ({how})"
    node.logger.bind(event="Removed").warning(
        "{}; stopping. This data dir cannot rejoin the cluster: remove it and start the node "
        "with --join to join again (as a new member)",
        node.removed,
    )
    node.loop.create_task(_stop_when_idle(node))


async def _stop_when_idle(node: RemovableNode) -> None:
    while not node.pipeline.started():  # learned while starting: let the start finish
        await asyncio.sleep(node.config.tick_seconds)
    await node.wait_for(lambda: node.requests.waiting == 0, node.config.request_timeout)
    await node.stop()
