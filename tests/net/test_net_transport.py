"""PeerTransport over real websockets on 127.0.0.1: batching, handshake, bad input, outages."""
from __future__ import annotations

import asyncio
import random

import aiohttp
import orjson
import pytest

from abcd.net import (
    CLOSE_BAD_FRAME,
    CLOSE_BAD_HELLO,
    CLOSE_BAD_TOKEN,
    CLOSE_REMOVED,
    CLOSE_WRONG_CLUSTER,
    Backoff,
    encode_frame,
    encode_hello,
)
from abcd.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    InstallSnapshotRequest,
    RequestVoteResponse,
    TimeoutNow,
)
from net_harness import CLUSTER, Node, reserve_socket, run, wait_until


def heartbeat(term: int, leader: int, follower: int, commit: int = 0) -> AppendEntriesRequest:
    return AppendEntriesRequest(term, leader, follower, 0, 0, (), commit)


async def start(*nodes: Node) -> list[Node]:
    return [await node.serve() for node in nodes]


async def close(*nodes: Node) -> None:
    for node in nodes:
        await node.close()


def connected(node: Node, peer: int) -> bool:
    return node.transport.stats()["peers"][peer]["connected"]


async def dial(session: aiohttp.ClientSession, node: Node, hello: bytes | str | None):
    ws = await session.ws_connect(node.url)
    if isinstance(hello, bytes):
        await ws.send_bytes(hello)
    elif isinstance(hello, str):
        await ws.send_str(hello)
    return ws


async def close_of(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """The close code and reason the server ended this connection with."""
    message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    return message.data, message.extra


def matches(text: str, expected: str) -> bool:
    """Exact, except that a trailing "..." leaves the JSON parser's own wording open."""
    return text.startswith(expected[:-3]) if expected.endswith("...") else text == expected


GOOD_HELLO_FROM_7 = encode_hello(CLUSTER, 7, None, "127.0.0.1:1")


# ----------------------------------------------------------------------------- exchange


def test_two_transports_exchange_batches_both_ways_one_frame_per_send():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        b.transport.set_peer(1, a.address)
        await wait_until(lambda: connected(a, 2) and connected(b, 1), "both links up")

        # One call (one step's messages for that peer) leaves as one frame.
        requests = [heartbeat(4, 1, 2, commit) for commit in range(100)]
        a.transport.send(2, requests)
        replies = [AppendEntriesResponse(4, 2, 1, True, 0), RequestVoteResponse(4, 2, 1, False)]
        b.transport.send(1, replies)
        await wait_until(lambda: b.received and a.received, "a frame each way")

        assert b.received == [(1, requests)]
        assert a.received == [(2, replies)]
        assert a.transport.stats()["peers"][2] | {"address": None} == {
            "address": None, "connected": True, "queued": 0, "dropped": 0,
            "sent_frames": 1, "sent_messages": 100, "reconnects": 0, "last_error": None,
        }
        assert b.transport.stats()["inbound"][1] == {"connections": 1, "received_frames": 1, "received_messages": 100}
        await close(a, b)

    run(body)


def test_an_idle_link_writes_the_frame_in_the_callers_turn():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        await wait_until(lambda: connected(a, 2), "the link up")
        a.transport.send(2, [heartbeat(4, 1, 2, 1)])
        # No await in between: the frame was written by send itself, not by a task later.
        assert a.transport.stats()["peers"][2]["sent_frames"] == 1
        assert a.transport.stats()["peers"][2]["queued"] == 0
        await wait_until(lambda: b.received, "the frame")
        assert b.received == [(1, [heartbeat(4, 1, 2, 1)])]
        await close(a, b)

    run(body)


def test_sends_while_dialing_queue_and_leave_as_one_frame_in_order():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        requests = [heartbeat(4, 1, 2, commit) for commit in range(50)]
        for request in requests:  # before the dial can complete
            a.transport.send(2, [request])
        assert a.transport.stats()["peers"][2]["queued"] == 50
        await wait_until(lambda: b.received, "the queued frame")
        assert b.received == [(1, requests)]
        await close(a, b)

    run(body)


def test_entries_survive_the_trip_including_binary_data():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        entries = (Entry(2, 8, b'{"put": ["k", "v"]}'), Entry(2, 9, bytes(range(256)), 1))
        request = AppendEntriesRequest(2, 1, 2, 7, 1, entries, 7, read_round=3)
        a.transport.send(2, [request])
        await wait_until(lambda: b.received, "the append")
        assert b.received == [(1, [request])]
        await close(a, b)

    run(body)


def test_a_snapshot_of_tens_of_megabytes_travels_in_one_frame_with_the_default_limit():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        # JSON text, as a store snapshot is: > 64 MiB once its quotes are escaped.
        item = b'["key%d",[{"key":"key%d","value":"%s"}]]'
        data = b"[" + b",".join(item % (i, i, b"x" * 30) for i in range(1_000_000)) + b"]"
        request = InstallSnapshotRequest(3, 1, 2, 4_000_000, 3, frozenset({1, 2, 3}), frozenset(), data)
        assert len(encode_frame([request])) > 64 * 1024 * 1024  # the old limit would refuse it
        a.transport.send(2, [request, heartbeat(3, 1, 2, 7)])
        await wait_until(lambda: b.received, "the snapshot", timeout=15)
        [(source, [got, after])] = b.received
        assert source == 1 and got == request and after == heartbeat(3, 1, 2, 7)
        assert a.transport.stats()["peers"][2]["dropped"] == 0
        await close(a, b)

    run(body)


def test_frames_may_arrive_as_text():
    async def body():
        (b,) = await start(Node(2))
        async with aiohttp.ClientSession() as session:
            ws = await dial(session, b, GOOD_HELLO_FROM_7.decode())
            await ws.send_str(encode_frame([TimeoutNow(5, 7, 2)]).decode())
            await wait_until(lambda: b.received, "the text frame")
            assert b.received == [(7, [TimeoutNow(5, 7, 2)])]
            await ws.close()
        await close(b)

    run(body)


# ----------------------------------------------------------------------------- handshake


def test_a_node_of_another_cluster_is_turned_away_with_the_reason():
    async def body():
        stranger, b = await start(Node(1, cluster_id="cluster-z"), Node(2))
        stranger.transport.set_peer(2, b.address)
        stranger.transport.send(2, [TimeoutNow(1, 1, 2)])
        reason = "wrong cluster id: expected cluster-a, got cluster-z"
        await wait_until(lambda: b.log.contains(reason), "the server to log the rejection")
        await wait_until(
            lambda: stranger.transport.stats()["peers"][2]["last_error"] == f"closed by node 2: 4001 {reason}",
            "the dialer to see the close reason",
        )
        assert stranger.log.contains(f"WARNING link to node 2 at {b.address}: closed by node 2: 4001 {reason}")
        assert b.received == []
        assert b.transport.stats()["rejected_connections"] >= 1
        await close(stranger, b)

    run(body)


def test_a_refused_dialer_keeps_backing_off_instead_of_hammering():
    async def body():
        stranger, b = await start(Node(1, cluster_id="cluster-z", backoff_initial=0.02, backoff_max=1.0), Node(2))
        loop = asyncio.get_running_loop()
        started = loop.time()
        stranger.transport.set_peer(2, b.address)
        await wait_until(lambda: b.transport.stats()["rejected_connections"] >= 5, "five refusals")
        # Waits of at least 0.01 + 0.02 + 0.04 + 0.08 s separate the five dials when the
        # backoff keeps doubling; redialing at the initial delay would take under 0.1 s.
        assert loop.time() - started >= 0.15
        await close(stranger, b)

    run(body)


@pytest.mark.parametrize(
    "server_token, client_token, code, reason",
    [
        ("s3cret", None, CLOSE_BAD_TOKEN, "missing cluster token"),
        ("s3cret", "guess", CLOSE_BAD_TOKEN, "wrong cluster token"),
    ],
)
def test_a_missing_or_wrong_token_is_turned_away(server_token, client_token, code, reason):
    async def body():
        (b,) = await start(Node(2, token=server_token))
        async with aiohttp.ClientSession() as session:
            ws = await dial(session, b, encode_hello(CLUSTER, 7, client_token, "127.0.0.1:1"))
            assert await close_of(ws) == (code, reason)
        assert b.log.contains(f"closing peer connection from node 7 at 127.0.0.1 ({code}): {reason}")
        await close(b)

    run(body)


def test_the_right_token_is_let_in():
    async def body():
        a, b = await start(Node(1, token="s3cret"), Node(2, token="s3cret"))
        a.transport.set_peer(2, b.address)
        a.transport.send(2, [TimeoutNow(1, 1, 2)])
        await wait_until(lambda: b.received == [(1, [TimeoutNow(1, 1, 2)])], "delivery")
        await close(a, b)

    run(body)


def test_an_accepted_hello_tells_who_dialed_in_and_the_address_it_advertises():
    # A node answers a peer its member table does not name yet at that address.
    async def body():
        heard: list[tuple[int, str]] = []
        a, b = await start(Node(1), Node(2, on_hello=lambda peer, address: heard.append((peer, address))))
        a.transport.set_peer(2, b.address)
        a.transport.send(2, [TimeoutNow(1, 1, 2)])
        await wait_until(lambda: b.received, "delivery")
        assert heard == [(1, a.address)]
        await close(a, b)

    run(body)


def test_a_removed_node_is_told_so_on_its_open_link_and_on_every_redial():
    async def body():
        removed: set[int] = set()
        told: list[tuple[int, str]] = []
        a, b = await start(
            Node(1, on_removed=lambda peer, reason: told.append((peer, reason)), backoff_initial=0.01),
            Node(2, is_removed=removed.__contains__),
        )
        a.transport.set_peer(2, b.address)
        a.transport.send(2, [TimeoutNow(1, 1, 2)])
        await wait_until(lambda: b.received == [(1, [TimeoutNow(1, 1, 2)])], "delivery")
        b.transport.refuse_removed()  # nobody is removed yet: nothing happens
        removed.add(1)  # a committed configuration removed node 1
        b.transport.refuse_removed()
        await wait_until(lambda: len(told) >= 2, "the open link's close and a refused redial")
        assert told[:2] == [(2, f"node 1 was removed from cluster {CLUSTER}")] * 2
        assert b.log.contains(f"({CLOSE_REMOVED}): node 1 was removed from cluster {CLUSTER}")
        a.transport.send(2, [TimeoutNow(1, 1, 2)])
        assert len(b.received) == 1
        await close(a, b)

    run(body)


@pytest.mark.parametrize(
    "first_frame, reason",
    [
        (b"[[5,1,7,2]]", 'hello must be an object {"type": "hello", ...}, got a list'),
        (b"not json", "hello is not valid JSON: ..."),
        (b'{"type": "hello", "cluster_id": "cluster-a"}', "hello is missing node_id, address"),
    ],
)
def test_a_connection_that_does_not_start_with_a_hello_is_closed(first_frame, reason):
    async def body():
        (b,) = await start(Node(2))
        async with aiohttp.ClientSession() as session:
            ws = await dial(session, b, first_frame)
            code, text = await close_of(ws)
            assert code == CLOSE_BAD_HELLO
            assert matches(text, reason)
        await close(b)

    run(body)


def test_a_connection_that_stays_silent_is_closed_after_the_hello_timeout():
    async def body():
        (b,) = await start(Node(2, hello_timeout=0.1))
        async with aiohttp.ClientSession() as session:
            ws = await dial(session, b, None)
            assert await close_of(ws) == (CLOSE_BAD_HELLO, "no hello within 0.1 s")
        await close(b)

    run(body)


# ----------------------------------------------------------------------------- bad frames

GARBAGE = [
    ("not JSON", b"\x00\x01garbage", "frame is not valid JSON: ..."),
    ("JSON not a list", b'{"term": 1}', "frame must be a list of messages, got an object"),
    (
        "wrong layout",
        b"[[5,1,7,2],[4,1,7,2,true]]",
        "message 1: AppendEntriesResponse must have 8 fields after the type code (term, source, dest, success, "
        "index, conflict_index, conflict_term, read_round), got 4",
    ),
    ("negative term", b"[[5,-1,7,2]]", "message 0: TimeoutNow.term must be a non-negative integer, got -1"),
    (
        "spoofed source",
        encode_frame([TimeoutNow(1, 7, 2), TimeoutNow(1, 3, 2)]),
        "message 1: source 3 is not the sender's node id 7 (spoofed)",
    ),
    ("addressed to another node", encode_frame([TimeoutNow(1, 7, 4)]), "message 0: dest 4 is not this node (2)"),
]


def test_garbage_closes_that_connection_and_the_node_keeps_serving():
    async def body():
        (b,) = await start(Node(2))
        async with aiohttp.ClientSession() as session:
            for round_number, (name, garbage, reason) in enumerate(GARBAGE, start=1):
                bad = await dial(session, b, GOOD_HELLO_FROM_7)
                await bad.send_bytes(encode_frame([TimeoutNow(round_number, 7, 2)]))  # good, then garbage
                await bad.send_bytes(garbage)
                code, text = await close_of(bad)
                assert code == CLOSE_BAD_FRAME, name
                assert matches(text, reason[:123]), name
                logged = f"closing peer connection from node 7 ({CLOSE_BAD_FRAME}): {reason.rstrip('.')}"
                assert b.log.contains(logged), name

                good = await dial(session, b, GOOD_HELLO_FROM_7)
                await good.send_bytes(encode_frame([TimeoutNow(100 + round_number, 7, 2)]))
                await wait_until(lambda: b.messages_from(7)[-1] == TimeoutNow(100 + round_number, 7, 2), name)
                await good.close()
            # Nothing of a rejected frame was delivered: only the good frames came through.
            terms = [message.term for message in b.messages_from(7)]
            assert terms == [term for n in range(1, len(GARBAGE) + 1) for term in (n, 100 + n)]
        await close(b)

    run(body)


def test_a_frame_over_the_size_limit_closes_the_connection():
    async def body():
        (b,) = await start(Node(2, max_frame_bytes=1000))
        async with aiohttp.ClientSession() as session:
            ws = await dial(session, b, GOOD_HELLO_FROM_7)
            await ws.send_bytes(encode_frame([TimeoutNow(1, 7, 2)] * 100))
            code, _ = await close_of(ws)
            assert code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        assert b.received == []
        await close(b)

    run(body)


def test_a_failing_on_frame_is_logged_and_the_connection_stays_up():
    async def body():
        (b,) = await start(Node(2))
        calls = []

        def on_frame(peer, messages):
            calls.append(messages)
            if len(calls) == 1:
                raise RuntimeError("boom")

        b.transport._on_frame = on_frame
        async with aiohttp.ClientSession() as session:
            ws = await dial(session, b, GOOD_HELLO_FROM_7)
            await ws.send_bytes(encode_frame([TimeoutNow(1, 7, 2)]))
            await ws.send_bytes(encode_frame([TimeoutNow(2, 7, 2)]))
            await wait_until(lambda: len(calls) == 2, "both frames")
            assert b.log.contains("ERROR on_frame failed for a frame from node 7")
            assert not ws.closed
            await ws.close()
        await close(b)

    run(body)


# ----------------------------------------------------------------------------- outages


def test_a_down_peer_gets_a_bounded_outbox_and_the_newest_messages_once_it_is_up():
    async def body():
        down = Node(2)  # its port is reserved, but nothing listens yet: dials are refused
        a, up = await start(Node(1, outbox_limit=10), Node(3))
        a.transport.set_peer(2, down.address)
        a.transport.set_peer(3, up.address)
        await wait_until(lambda: a.transport.stats()["peers"][2]["reconnects"] >= 2, "a few failed dials")

        sent = [TimeoutNow(term, 1, 2) for term in range(1, 26)]
        for start_at in range(0, 25, 5):
            a.transport.send(2, sent[start_at:start_at + 5])
        a.transport.send(3, [TimeoutNow(1, 1, 3)])
        # A dead peer holds up no one.
        await wait_until(lambda: up.received == [(1, [TimeoutNow(1, 1, 3)])], "the live peer's message")
        stats = a.transport.stats()["peers"][2]
        assert (stats["connected"], stats["queued"], stats["dropped"]) == (False, 10, 15)
        assert "ConnectionRefused" in stats["last_error"] or "Cannot connect" in stats["last_error"]

        await down.serve()
        await wait_until(lambda: len(down.messages_from(1)) == 10, "the queued messages after the peer came up")
        assert down.messages_from(1) == sent[-10:]
        assert a.transport.stats()["peers"][2]["queued"] == 0
        await close(a, up, down)

    run(body)


def test_a_restarted_peer_is_redialed():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        a.transport.send(2, [TimeoutNow(1, 1, 2)])
        await wait_until(lambda: b.received, "first delivery")
        port = b.port
        await close(b)
        await wait_until(lambda: not connected(a, 2), "the writer to notice the peer is gone")

        sock = reserve_socket(port)
        b2 = await Node(2, sock=sock).serve()
        await wait_until(lambda: connected(a, 2), "the redial")
        a.transport.send(2, [TimeoutNow(2, 1, 2)])
        await wait_until(lambda: b2.received == [(1, [TimeoutNow(2, 1, 2)])], "delivery to the restarted peer")
        assert a.transport.stats()["peers"][2]["reconnects"] >= 1
        assert a.transport.stats()["peers"][2]["last_error"] is None  # cleared by the good connection
        await close(a, b2)

    run(body)


def test_remove_peer_stops_the_writer_and_drops_its_messages():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        await wait_until(lambda: b.transport.stats()["inbound"].get(1, {}).get("connections") == 1, "the link")
        a.transport.remove_peer(2)
        await wait_until(lambda: b.transport.stats()["inbound"][1]["connections"] == 0, "the link to close")
        await wait_until(lambda: not a.transport._writers, "the writer task to end")
        a.transport.send(2, [TimeoutNow(1, 1, 2)])
        assert a.transport.stats()["peers"] == {}
        assert a.transport.stats()["unknown_dest_dropped"] == 1
        assert b.received == []
        await close(a, b)

    run(body)


def test_set_peer_with_a_new_address_redials_there_keeping_the_queue():
    async def body():
        a, old, new = await start(Node(1), Node(2), Node(2))
        a.transport.set_peer(2, old.address)
        await wait_until(lambda: connected(a, 2), "the first link")
        a.transport.set_peer(2, new.address)
        a.transport.send(2, [TimeoutNow(3, 1, 2)])
        await wait_until(lambda: new.received, "delivery at the new address")
        assert new.received == [(1, [TimeoutNow(3, 1, 2)])]
        assert old.received == []
        await close(a, old, new)

    run(body)


def test_a_batch_too_big_for_one_frame_goes_out_in_several():
    async def body():
        limit = 2000
        a, b = await start(Node(1, max_frame_bytes=limit), Node(2, max_frame_bytes=limit))
        a.transport.set_peer(2, b.address)
        await wait_until(lambda: connected(a, 2), "the link")
        entry = Entry(1, 1, b"x" * 100)
        batch = [AppendEntriesRequest(1, 1, 2, 0, 0, (entry,), commit) for commit in range(40)]
        oversized = AppendEntriesRequest(1, 1, 2, 0, 0, (Entry(1, 1, b"y" * limit),), 99)
        a.transport.send(2, batch + [oversized])
        await wait_until(lambda: len(b.messages_from(1)) == 40, "the whole batch")
        assert b.messages_from(1) == batch
        assert len(b.received) > 1
        stats = a.transport.stats()["peers"][2]
        assert (stats["dropped"], stats["sent_messages"]) == (1, 40)
        assert a.log.contains("dropping a AppendEntriesRequest for node 2")
        await close(a, b)

    run(body)


def test_close_ends_writers_and_closes_inbound_connections():
    async def body():
        a, b = await start(Node(1), Node(2))
        a.transport.set_peer(2, b.address)
        b.transport.set_peer(1, a.address)
        await wait_until(lambda: connected(a, 2) and connected(b, 1), "both links")
        await a.transport.close()
        assert not a.transport._writers
        await wait_until(lambda: b.transport.stats()["inbound"][1]["connections"] == 0, "a's link to b to close")
        await wait_until(lambda: not connected(b, 1), "b to see a go")
        assert b.transport.stats()["peers"][1]["last_error"] == "closed by node 1: 1001 node shutting down"
        with pytest.raises(RuntimeError, match="closed"):
            a.transport.set_peer(3, "127.0.0.1:9")
        await close(a, b)

    run(body)


# ----------------------------------------------------------------------------- small parts


def test_set_peer_refuses_this_node_and_bad_addresses():
    async def body():
        (a,) = await start(Node(1))
        with pytest.raises(ValueError, match="node 1 is this node"):
            a.transport.set_peer(1, "127.0.0.1:9")
        with pytest.raises(ValueError, match="address must be \"host:port\", got 'localhost'"):
            a.transport.set_peer(2, "localhost")
        await close(a)

    run(body)


def test_backoff_doubles_to_the_cap_with_jitter_and_resets():
    backoff = Backoff(0.05, 2.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    caps = [min(0.05 * 2**n, 2.0) for n in range(10)]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(delays, caps))
    assert delays == [Backoff(0.05, 2.0, random.Random(1)).next_delay()] + delays[1:]
    again = Backoff(0.05, 2.0, random.Random(1))
    assert [again.next_delay() for _ in range(10)] == delays
    backoff.reset()
    assert backoff.next_delay() <= 0.05
