"""Forwarding to the leader over a kept-open session: batching, 503 retry, broken links."""
import asyncio
import socket

import orjson
import pytest
from aiohttp import web

from abcd.node.forward import Forwarder
from abcd.node.requests import ClientRead, ClientWrite, Waiter


class FakeLeader:
    """A /v1/session endpoint that records frames and answers with `answer(request)`."""

    def __init__(self, answer):
        self.answer = answer
        self.frames = []
        self.queries = []

    async def handle(self, request):
        self.queries.append(dict(request.query))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            frame = orjson.loads(message.data)
            self.frames.append(frame)
            replies = [r for r in (self.answer(req) for req in frame) if r is not None]
            if replies:
                await ws.send_str(orjson.dumps(replies).decode())
            if any(req.get("key") == "hang-up" for req in frame):
                await ws.close()
        return ws

    async def start(self):
        app = web.Application()
        app.router.add_get("/v1/session", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.address = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self


def item(op, key, answers, write=True):
    waiter = Waiter(answers.append, deadline=1e9, is_write=write)
    request = {"op": op, "key": key}
    return ClientWrite(b"", request, waiter) if write else ClientRead(request, waiter)


async def settle(predicate, what):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def test_requests_of_a_turn_share_a_frame_and_answers_are_matched():
    async def body():
        leader = await FakeLeader(lambda r: {"id": r["id"], "status": 200, "body": {"key": r["key"]}}).start()
        unsent = []
        forwarder = Forwarder(unsent.extend)
        answers = []
        for key in ("a", "b", "c"):
            forwarder.forward(leader.address, item("put", key, answers))
        await settle(lambda: len(answers) == 3, "three answers")
        assert leader.frames and len(leader.frames[0]) == 3
        assert leader.queries == [{"forwarded": "1"}]  # never forwarded again by the leader
        assert sorted(a.body["key"] for a in answers) == ["a", "b", "c"]
        assert unsent == []
        await forwarder.close()
        await leader.runner.cleanup()

    asyncio.run(body())


def test_a_503_from_the_leader_hands_the_request_back_to_retry():
    async def body():
        leader = await FakeLeader(
            lambda r: {"id": r["id"], "status": 503, "body": {"error": "not leader", "code": "no_leader"}}
        ).start()
        unsent = []
        forwarder = Forwarder(unsent.extend)
        answers = []
        forwarded = item("put", "a", answers)
        forwarder.forward(leader.address, forwarded)
        await settle(lambda: unsent, "the request to come back")
        assert unsent == [forwarded] and answers == []
        await forwarder.close()
        await leader.runner.cleanup()

    asyncio.run(body())


def test_an_unreachable_leader_hands_everything_back():
    async def body():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nobody listens here once closed
        unsent = []
        forwarder = Forwarder(unsent.extend)
        answers = []
        items = [item("put", "a", answers), item("get", "b", answers, write=False)]
        for i in items:
            forwarder.forward(f"127.0.0.1:{port}", i)
        await settle(lambda: len(unsent) == 2, "both requests back")
        assert answers == []
        await forwarder.close()

    asyncio.run(body())


@pytest.mark.parametrize(
    "answering, write_key",
    [
        (lambda r: None, "hang-up"),  # never answers; hangs up on "hang-up"
        # Answers every request under an id the link never sent: the frame breaks the
        # session protocol, and the link ends as if broken.
        (lambda r: {"id": r["id"] + 1000, "status": 200, "body": {}}, "a"),
    ],
    ids=["the leader hangs up", "the leader breaks the protocol"],
)
def test_a_link_that_ends_after_sending_answers_writes_504_and_retries_reads(answering, write_key):
    async def body():
        leader = await FakeLeader(answering).start()
        unsent = []
        forwarder = Forwarder(unsent.extend)
        answers = []
        write = item("put", write_key, answers)
        read = item("get", "x", answers, write=False)
        forwarder.forward(leader.address, write)
        forwarder.forward(leader.address, read)
        await settle(lambda: answers and unsent, "the link to break")
        [answer] = answers
        assert answer.status == 504 and "outcome is unknown" in answer.body["error"]
        assert unsent == [read]
        await forwarder.close()
        await leader.runner.cleanup()

    asyncio.run(body())
