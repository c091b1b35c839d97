"""Retries with the same request id, endpoint failover, timeouts and unknown outcomes."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest
from client_helpers import client_for, request_ids, wait_until, with_cluster
from fake_cluster import free_port

from abcd.client import BACKOFF_INITIAL, BACKOFF_MAX, Backoff, Client, Timeout, Unavailable


@pytest.mark.parametrize("session", [True, False], ids=["session", "http"])
def test_a_503_is_retried_on_the_next_endpoint_with_the_same_request_id(session):
    async def body(cluster):
        first, second = cluster.nodes
        for n in cluster.nodes:
            n.behaviour.session = session
        first.behaviour.fail_writes = 1
        async with client_for(cluster, client_id="r") as c:
            answer = await c.put("a", "1")
        assert request_ids(first) == ["r:1"] and request_ids(second) == ["r:1"]
        assert cluster.store.applied["r:1"] == 1
        assert answer["revision"] == 2 and cluster.store.kvs["a"]["value"] == "1"
    with_cluster(2, body)


@pytest.mark.parametrize("session", [True, False], ids=["session", "http"])
def test_a_write_applied_before_the_connection_dropped_is_applied_once(session):
    async def body(cluster):
        first, second = cluster.nodes
        for n in cluster.nodes:
            n.behaviour.session = session
        first.behaviour.drop_after_apply = 1
        async with client_for(cluster, client_id="d") as c:
            answer = await c.put("a", "1")
            after = await c.put("b", "2")
        # Sent at least twice (aiohttp may itself resend a PUT once on the same node),
        # applied once.
        assert (request_ids(first) + request_ids(second)).count("d:1") >= 2
        assert cluster.store.applied["d:1"] == 1
        # The retry got the remembered answer of the first attempt.
        assert answer == {"revision": 2, "prev_kv": None} and after["revision"] == 3
    with_cluster(2, body)


def test_a_down_endpoint_is_skipped():
    async def body(cluster):
        async with client_for(cluster, f"127.0.0.1:{free_port()}") as c:
            await c.put("a", "1")
            assert (await c.get("a"))["kv"]["value"] == "1"
            assert c.endpoints[1] == cluster.nodes[0].base
    with_cluster(1, body)


def test_a_follower_answering_503_is_left_for_one_that_answers():
    async def body(cluster):
        cluster.nodes[0].behaviour.unavailable = True
        async with client_for(cluster) as c:
            await c.put("a", "1")
            got = await c.get("a")
            status = await c.status()
        assert got["kv"]["value"] == "1" and status["id"] == 2
    with_cluster(2, body)


def test_an_http_redirect_is_followed_and_its_target_preferred():
    async def body(cluster):
        follower, leader = cluster.nodes
        follower.behaviour.session = False
        follower.behaviour.redirect_to = leader.base
        async with Client([follower.endpoint], timeout=3) as c:
            await c.lease_grant(5)
            await c.members()
            assert c.endpoints == [follower.base, leader.base]
        assert [p for _m, p, _r in follower.http] == ["/v1/lease"]  # then straight to the leader
        assert [p for _m, p, _r in leader.http] == ["/v1/lease", "/v1/members"]
    with_cluster(2, body)


def test_every_endpoint_down_raises_unavailable_with_a_known_outcome_after_the_timeout():
    async def main():
        async with Client([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"], timeout=0.4) as c:
            start = time.monotonic()
            with pytest.raises(Unavailable) as info:
                await c.put("a", "1")
            return info.value, time.monotonic() - start
    error, elapsed = asyncio.run(main())
    assert not isinstance(error, Timeout)
    assert error.outcome_unknown is False and "was not applied" in str(error)
    assert "cannot reach" in str(error) and error.status == 503
    assert 0.4 <= elapsed < 4.0  # gave up at the timeout, not much later


def test_a_deadline_passing_while_connecting_means_the_write_was_not_sent():
    # A listener that never accepts: the kernel completes the TCP handshake, and the
    # session's upgrade request (which carries no write) is never answered.
    listener = socket.create_server(("127.0.0.1", 0))

    async def main():
        async with Client([f"127.0.0.1:{listener.getsockname()[1]}"], timeout=0.3) as c:
            with pytest.raises(Unavailable) as info:
                await c.put("a", "1")
            return info.value

    try:
        error = asyncio.run(main())
    finally:
        listener.close()
    assert not isinstance(error, Timeout)
    assert error.outcome_unknown is False and "was not applied" in str(error)
    assert "connecting to" in str(error)


def test_a_cluster_refusing_with_503_gives_unavailable_not_applied():
    async def body(cluster):
        cluster.nodes[0].behaviour.unavailable = True
        async with client_for(cluster, timeout=0.3) as c:
            with pytest.raises(Unavailable) as info:
                await c.put("a", "1")
        assert info.value.outcome_unknown is False and "no leader known" in str(info.value)
        assert cluster.store.kvs == {}
        assert len(request_ids(cluster.nodes[0])) >= 2  # it did retry
    with_cluster(1, body)


def test_connections_dropped_after_sending_make_the_outcome_unknown():
    async def body(cluster):
        cluster.nodes[0].behaviour.drop_after_apply = 10_000
        async with client_for(cluster, timeout=0.3) as c:
            with pytest.raises(Unavailable) as info:
                await c.put("a", "1")
        assert info.value.outcome_unknown is True and "outcome unknown" in str(info.value)
        assert cluster.store.applied.most_common(1)[0][1] == 1  # every retry deduplicated
    with_cluster(1, body)


@pytest.mark.parametrize("session", [True, False], ids=["session", "http"])
def test_a_slow_node_times_out_writes_with_unknown_outcome_and_reads_without(session):
    async def body(cluster):
        cluster.nodes[0].behaviour.delay = 5.0
        cluster.nodes[0].behaviour.session = session
        async with client_for(cluster, timeout=0.3) as c:
            start = time.monotonic()
            with pytest.raises(Timeout) as write:
                await c.put("a", "1")
            with pytest.raises(Timeout) as read:
                await c.get("a")
            elapsed = time.monotonic() - start
        assert write.value.outcome_unknown is True and "outcome unknown" in str(write.value)
        assert read.value.outcome_unknown is False and read.value.status == 504
        assert 0.6 <= elapsed < 4.0  # never waited for the node's 5 s
    with_cluster(1, body)


def test_a_timed_out_session_request_leaves_the_session_usable():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster, timeout=0.5) as c:
            await c.put("a", "1")
            node.behaviour.delay = 1.0
            with pytest.raises(Timeout):
                await c.get("a")
            node.behaviour.delay = 0.0
            # The node answers frames in order: wait until the slow one is behind it.
            await wait_until(lambda: node.frames_answered == len(node.frames), what="the slow frame")
            assert (await c.get("a"))["kv"]["value"] == "1"
    with_cluster(1, body)


def test_backoff_grows_exponentially_with_jitter_up_to_the_maximum():
    backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)
    pauses = [backoff.pause(None, endpoints=1) for _ in range(12)]
    for n, pause in enumerate(pauses):
        nominal = min(BACKOFF_INITIAL * 2**n, BACKOFF_MAX)
        assert nominal / 2 <= pause <= nominal


def test_retry_after_waits_only_once_every_endpoint_was_tried():
    backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)
    # Three endpoints; the first says "Retry-After: 1": the next two are tried at once.
    assert backoff.pause(1.0, endpoints=3) <= BACKOFF_INITIAL
    assert backoff.pause(None, endpoints=3) <= 2 * BACKOFF_INITIAL
    # The round is over: now the node's wish counts (capped at BACKOFF_MAX).
    assert backoff.pause(None, endpoints=3) == min(1.0, BACKOFF_MAX)
    assert backoff.pause(None, endpoints=3) <= 8 * BACKOFF_INITIAL  # and it was used up
    # With a single endpoint there is nobody else to ask.
    assert Backoff(BACKOFF_INITIAL, BACKOFF_MAX).pause(0.5, endpoints=1) == 0.5
