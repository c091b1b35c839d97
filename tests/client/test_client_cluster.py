"""Cluster calls (status, members, leader transfer), leases and watch."""
from __future__ import annotations

import asyncio

import pytest
from client_helpers import client_for, with_cluster
from fake_cluster import free_port

from abcd.client import Client, NotFound, NotSupported, Unavailable


def test_status_and_members():
    async def body(cluster):
        async with client_for(cluster) as c:
            status = await c.status()
            members = await c.members()
        assert status["role"] == "leader" and status["leader"] == 1 and status["term"] == 3
        assert [(m["id"], m["leader"], m["voter"]) for m in members["members"]] == [(1, True, True), (2, False, True)]
    with_cluster(2, body)


def test_membership_changes_and_leader_transfer():
    async def body(cluster):
        node = cluster.nodes[0]
        async with client_for(cluster, client_id="m") as c:
            added = await c.member_add("127.0.0.1:9999", learner=True)
            promoted = await c.member_promote(added["member"]["id"])
            transferred = await c.leader_transfer(2)
            await c.member_remove(3)
            remaining = await c.members()
            with pytest.raises(NotFound, match="member 7 not found"):
                await c.leader_transfer(7)
        assert added["member"]["address"] == "127.0.0.1:9999" and added["member"]["voter"] is False
        assert promoted["member"]["voter"] is True
        assert transferred == {"leader": 2}
        assert [m["id"] for m in remaining["members"]] == [1, 2]
        # Changes carry request ids so that a retry can be recognised; reads do not.
        assert [(m, p, rid) for m, p, rid in node.http[:4]] == [
            ("POST", "/v1/members", "m:1"),
            ("POST", "/v1/members/3/promote", "m:2"),
            ("POST", "/v1/leader/transfer", "m:3"),
            ("DELETE", "/v1/members/3", "m:4"),
        ]
        assert node.http[4] == ("GET", "/v1/members", None)
    with_cluster(2, body)


def test_member_add_asks_for_a_learner_unless_told_otherwise():
    async def body(cluster):
        async with client_for(cluster) as c:
            default = await c.member_add("127.0.0.1:9998")
            voter = await c.member_add("127.0.0.1:9997", learner=False)
        assert default["member"]["voter"] is False  # the API's default, as docs/api.md says
        assert voter["member"]["voter"] is True
    with_cluster(1, body)


def test_lease_grant_keepalive_revoke_and_keys_going_with_the_lease():
    async def body(cluster):
        async with client_for(cluster) as c:
            lease = await c.lease_grant(10)
            await c.put("session/a", "x", lease=lease["id"])
            kept = await c.lease_keepalive(lease["id"])
            await c.lease_revoke(lease["id"])
            gone = await c.get("session/a")
            with pytest.raises(NotFound):
                await c.lease_keepalive(lease["id"])
        assert lease == {"id": 1, "ttl": 10} and kept["ttl"] == 10
        assert gone is None
    with_cluster(1, body)


def test_a_call_the_node_does_not_implement_raises_not_supported():
    async def body(cluster):
        cluster.nodes[0].behaviour.leases = False
        async with client_for(cluster) as c:
            with pytest.raises(NotSupported) as info:
                await c.lease_grant(10)
        assert (info.value.status, info.value.code) == (501, "not_implemented")
        assert len(cluster.nodes[0].http) == 1  # not retried: the answer is final
    with_cluster(1, body)


def test_watch_streams_events_of_a_key():
    async def body(cluster):
        async with client_for(cluster) as c:
            await c.put("w", "0")
            frames = []
            async for frame in c.watch("w", start_revision=2):
                frames.append(frame)
                if len(frames) == 1:
                    await c.put("other", "ignored")
                    await c.put("w", "1")
                    await c.delete("w")
                if len(frames) == 3:
                    break
        return [(e["type"], e["kv"]["value"]) for f in frames for e in f["events"]]
    assert with_cluster(1, body) == [("put", "0"), ("put", "1"), ("delete", "")]


def test_a_broken_watch_resumes_on_the_next_endpoint_after_the_last_revision():
    async def body(cluster):
        for n in cluster.nodes:
            n.behaviour.drop_watch_after = 1  # every stream breaks after one frame
        async with client_for(cluster) as c:
            for i in range(3):
                await c.put("p/k", str(i))
            seen = []
            async for frame in c.watch("p/", prefix=True, start_revision=2):
                seen += [(f["revision"], e["kv"]["value"]) for f in [frame] for e in f["events"]]
                if len(seen) == 3:
                    break
        return seen
    # No event lost, none repeated.
    assert with_cluster(2, body) == [(2, "0"), (3, "1"), (4, "2")]


def test_watch_on_a_node_without_watch_is_not_supported():
    async def body(cluster):
        cluster.nodes[0].behaviour.watch = False
        async with client_for(cluster) as c:
            with pytest.raises(NotSupported) as info:
                async for _frame in c.watch("w"):
                    pass
        assert info.value.status == 501
    with_cluster(1, body)


def test_watch_with_no_endpoint_up_is_unavailable():
    async def main():
        async with Client([f"127.0.0.1:{free_port()}"], timeout=0.2) as c:
            with pytest.raises(Unavailable):
                async for _frame in c.watch("w"):
                    pass
    asyncio.run(main())
