"""start_eagerly: a coroutine runs in the caller's turn; one that suspends is finished by a Task.

And the transport's use of it: a frame held up by backpressure keeps later sends queued
behind it, so frames leave in the order `send` was called.
"""
from __future__ import annotations

import asyncio

import pytest

from abcd.net.eager import start_eagerly
from abcd.net.transport import PeerTransport, _Peer
from abcd.raft.messages import AppendEntriesRequest
from collections import deque
from net_harness import CLUSTER, run


def test_a_coroutine_that_never_suspends_finishes_inside_the_call():
    done = []

    async def write():
        done.append("written")

    async def body():
        assert start_eagerly(write()) is None
        assert done == ["written"]

    run(body)


def test_an_exception_before_the_first_suspension_reaches_the_caller():
    async def broken():
        raise ConnectionResetError("peer went away")

    async def body():
        with pytest.raises(ConnectionResetError, match="peer went away"):
            start_eagerly(broken())

    run(body)


def test_a_coroutine_that_suspends_is_finished_by_a_task_with_its_result():
    steps = []

    async def drain(gate: asyncio.Future) -> str:
        steps.append("before")
        value = await gate
        steps.append("after")
        return value

    async def body():
        gate = asyncio.get_running_loop().create_future()
        task = start_eagerly(drain(gate))
        assert steps == ["before"] and task is not None and not task.done()
        gate.set_result("drained")
        assert await task == "drained"
        assert steps == ["before", "after"]

    run(body)


def test_cancelling_the_task_cancels_the_coroutine_where_it_waits():
    cleaned = []

    async def drain(gate: asyncio.Future) -> None:
        try:
            await gate
        finally:
            cleaned.append(gate.cancelled())

    async def body():
        gate = asyncio.get_running_loop().create_future()
        task = start_eagerly(drain(gate))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == [True]

    run(body)


class _SlowSocket:
    """A websocket whose first frame waits on `gate` (a full send buffer)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.gate = asyncio.get_running_loop().create_future()

    async def send_bytes(self, frame: bytes) -> None:
        self.frames.append(frame)
        if len(self.frames) == 1:
            await self.gate


def test_a_frame_held_by_backpressure_keeps_later_sends_queued_behind_it():
    async def body():
        transport = PeerTransport(1, CLUSTER, token=None, address="127.0.0.1:1", on_frame=lambda *_: None)
        peer = _Peer(2, "127.0.0.1:2", "ws://127.0.0.1:2/v1/raft", deque(maxlen=16))
        transport._peers[2] = peer  # no writer task: this test plays its part
        peer.ws = socket = _SlowSocket()
        first, second = (AppendEntriesRequest(3, 1, 2, 0, 0, (), commit) for commit in (1, 2))

        transport.send(2, [first])
        assert len(socket.frames) == 1 and peer.busy
        transport.send(2, [second])
        assert len(socket.frames) == 1, "a second frame must not overtake the first"
        assert list(peer.outbox) == [second]

        peer.wakeup.clear()
        socket.gate.set_result(None)
        await asyncio.wait_for(peer.wakeup.wait(), 5)  # the writer is told to send the rest
        assert not peer.busy and list(peer.outbox) == [second]
        assert peer.sent_frames == 1 and peer.dropped == 0

    run(body)
