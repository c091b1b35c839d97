"""The client's key-value calls: the pipelined session, request ids, HTTP fallback, errors."""
from __future__ import annotations

import asyncio
import re

import pytest
from client_helpers import client_for, request_ids, with_cluster

from abcd.client import WRITE_WINDOW, BadRequest, Client, ClientError, NotFound, parse_endpoint


def test_put_then_get_round_trip_over_the_session():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster) as c:
            put = await c.put("greeting", "hello")
            got = await c.get("greeting")
        assert put == {"revision": 2, "prev_kv": None}
        assert got["kv"]["value"] == "hello" and got["kv"]["version"] == 1 and got["revision"] == 2
        assert [r["op"] for f in node.frames for r in f] == ["put", "get"]
        assert node.http == []  # nothing went over plain HTTP
    with_cluster(1, body)


def test_requests_issued_in_one_loop_turn_go_out_in_one_frame():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster) as c:
            await c.put("warm", "up")  # the session is open from here on
            frames_before = len(node.frames)
            results = await asyncio.gather(
                *(c.put(f"k{i}", f"v{i}") for i in range(10)), *(c.get("warm") for _ in range(5))
            )
        new = node.frames[frames_before:]
        assert len(new) == 1, f"expected one frame, got sizes {[len(f) for f in new]}"
        assert sorted(r["op"] for r in new[0]) == ["get"] * 5 + ["put"] * 10
        assert len({r["id"] for r in new[0]}) == 15
        assert all(r["kv"]["value"] == "up" for r in results[10:])
    with_cluster(1, body)


def test_the_first_burst_shares_one_frame_even_while_the_session_connects():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster) as c:
            await asyncio.gather(*(c.put(f"k{i}", "v") for i in range(8)))
        assert [len(f) for f in node.frames] == [8]
    with_cluster(1, body)


def test_responses_are_matched_by_id_not_by_position():
    # The fake node answers each frame in reverse order.
    async def body(cluster):
        async with client_for(cluster) as c:
            await asyncio.gather(*(c.put(f"k{i}", f"v{i}") for i in range(6)))
            got = await asyncio.gather(*(c.get(f"k{i}") for i in range(6)))
        assert [g["kv"]["value"] for g in got] == [f"v{i}" for i in range(6)]
    with_cluster(1, body)


def test_writes_carry_distinct_request_ids_of_this_client_and_reads_none():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster, client_id="c7") as c:
            await c.put("a", "1")
            await c.delete("a")
            await c.txn([], [{"put": {"key": "b", "value": "2"}}], [])
            await c.get("b")
            await c.range("")
        assert request_ids(node) == ["c7:1", "c7:2", "c7:3"]
    with_cluster(1, body)


def test_a_random_client_id_is_16_hex_chars_and_differs_per_client():
    a, b = Client(), Client()
    assert re.fullmatch(r"[0-9a-f]{16}", a.client_id) and a.client_id != b.client_id


def test_more_writes_than_the_window_are_all_applied_but_never_more_than_the_window_at_once():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster) as c:
            await asyncio.gather(*(c.put(f"k{i:03}", "v") for i in range(WRITE_WINDOW + 50)))
        assert len(cluster.store.kvs) == WRITE_WINDOW + 50
        assert max(len(f) for f in node.frames) == WRITE_WINDOW
    with_cluster(1, body)


def test_delete_range_and_txn_bodies():
    async def body(cluster):
        async with client_for(cluster) as c:
            for k in ("app/a", "app/b", "app/c", "other"):
                await c.put(k, k.upper())
            listed = await c.range("app/", limit=2)
            deleted = await c.delete("app/", prefix=True)
            none_left = await c.range("app/")
            swapped = await c.cas("other", "OTHER", "new")
            refused = await c.cas("other", "OTHER", "newer")
            value = (await c.get("other"))["kv"]["value"]
        assert [kv["key"] for kv in listed["kvs"]] == ["app/a", "app/b"] and listed["more"] is True
        assert deleted["deleted"] == 3
        assert none_left["kvs"] == [] and none_left["more"] is False
        assert swapped["succeeded"] is True and refused["succeeded"] is False
        assert value == "new"
    with_cluster(1, body)


def test_get_of_a_missing_key_is_none():
    async def body(cluster):
        async with client_for(cluster) as c:
            return await c.get("nope")
    assert with_cluster(1, body) is None


def test_errors_map_to_exceptions_with_status_code_and_message():
    async def body(cluster):
        async with client_for(cluster) as c:
            with pytest.raises(BadRequest) as bad:
                await c.put("", "x")
            with pytest.raises(NotFound) as missing:
                await c.lease_revoke(99)
            with pytest.raises(NotFound):
                await c.member_remove(42)
            # The session survives an error answer.
            assert (await c.put("still", "works"))["revision"] == 2
        return bad.value, missing.value
    bad, missing = with_cluster(1, body)
    assert (bad.status, bad.code, bad.message) == (400, "bad_request", "key must be a non-empty string")
    assert (missing.status, missing.code) == (404, "lease_not_found") and "99" in str(missing)
    assert isinstance(bad, ClientError) and bad.body == {"error": bad.message, "code": "bad_request"}


def test_a_node_without_sessions_is_used_over_plain_http():
    async def body(cluster):
        node = cluster.nodes[0]
        node.behaviour.session = False
        async with client_for(cluster, client_id="h1") as c:
            await c.put("dir/with space?&#%", "x", lease=None)
            got = await c.get("dir/with space?&#%")
            await c.put("b", "y")
            listed = await c.range("", limit=1)
            deleted = await c.delete("b")
            txn = await c.cas("dir/with space?&#%", "x", "z")
        assert got["kv"]["key"] == "dir/with space?&#%" and got["kv"]["value"] == "x"
        assert listed["more"] is True and deleted["deleted"] == 1 and txn["succeeded"] is True
        assert node.frames == []
        assert [(m, rid) for m, _p, rid in node.http] == [
            ("PUT", "h1:1"), ("GET", None), ("PUT", "h1:2"), ("GET", None), ("DELETE", "h1:3"), ("POST", "h1:4")
        ]
    with_cluster(1, body)


@pytest.mark.parametrize("text, base", [
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://localhost:1", "http://localhost:1"),
    ("https://10.0.0.1:443/", "https://10.0.0.1:443"),
    ("[::1]:9", "http://[::1]:9"),
])
def test_endpoints_are_parsed(text, base):
    assert parse_endpoint(text) == base


@pytest.mark.parametrize("text", ["localhost", "127.0.0.1:port", "ftp://h:1", "h:99999", "h:1/path", ""])
def test_bad_endpoints_are_refused_with_the_endpoint_named(text):
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        Client([text])


def test_bad_client_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one endpoint"):
        Client([])
    with pytest.raises(ValueError, match="timeout must be"):
        Client(timeout=0)
    with pytest.raises(ValueError, match="client_id"):
        Client(client_id="a:b")
