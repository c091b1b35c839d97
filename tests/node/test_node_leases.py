"""Leases: grant, keys attached, keepalive, revoke, and expiry proposed by the leader."""
from abcd.node.leases import LeaseTimers

from node_harness import run_with_node, wait_until


def test_timers_give_new_leases_a_full_ttl_and_expire_them_after_it():
    timers = LeaseTimers(retry_seconds=1.0)
    assert timers.on_tick([(1, 5)], 100.0, leading=True, term=2) == []
    assert timers.on_tick([(1, 5)], 104.9, leading=True, term=2) == []
    assert timers.on_tick([(1, 5)], 105.0, leading=True, term=2) == [1]
    # Proposed once; proposed again only if it has not applied after the retry delay.
    assert timers.on_tick([(1, 5)], 105.5, leading=True, term=2) == []
    assert timers.on_tick([(1, 5)], 106.0, leading=True, term=2) == [1]
    # Applied: the store no longer has it.
    assert timers.on_tick([], 106.1, leading=True, term=2) == []
    assert timers.deadlines == {}


def test_keepalive_pushes_the_deadline_back():
    timers = LeaseTimers(retry_seconds=1.0)
    timers.on_tick([(1, 5)], 0.0, leading=True, term=1)
    timers.keepalive(1, 5, 4.0)
    assert timers.on_tick([(1, 5)], 8.9, leading=True, term=1) == []
    assert timers.on_tick([(1, 5)], 9.0, leading=True, term=1) == [1]


def test_a_new_leader_gives_every_lease_a_full_ttl_and_followers_keep_no_clock():
    timers = LeaseTimers(retry_seconds=1.0)
    timers.on_tick([(1, 5)], 0.0, leading=True, term=1)
    assert timers.on_tick([(1, 5)], 3.0, leading=False, term=2) == []
    timers.keepalive(1, 5, 3.0)  # not leading: ignored
    assert timers.deadlines == {}
    assert timers.on_tick([(1, 5)], 4.0, leading=True, term=3) == []
    assert timers.on_tick([(1, 5)], 8.9, leading=True, term=3) == []
    assert timers.on_tick([(1, 5)], 9.0, leading=True, term=3) == [1]


def test_lease_calls_and_expiry_deletes_the_keys(tmp_path):
    async def body(n):
        status, lease = await n.call("POST", "/v1/lease", json={"ttl": 1})
        assert status == 200 and lease["ttl"] == 1
        lease_id = lease["id"]
        status, put = await n.call("PUT", "/v1/kv/session", json={"value": "x", "lease": lease_id})
        assert status == 200
        status, alive = await n.call("POST", f"/v1/lease/{lease_id}/keepalive")
        assert status == 200 and alive == {"id": lease_id, "ttl": 1}
        # Expiry: the leader proposes lease_expire once the TTL passes without keepalive.
        await wait_until(lambda: n.node.store.get("session") is None, "the lease to expire", timeout=5)
        status, missing = await n.call("POST", f"/v1/lease/{lease_id}/keepalive")
        assert status == 404 and missing["code"] == "lease_not_found"
        # Revoke deletes at once.
        _, other = await n.call("POST", "/v1/lease", json={"ttl": 60})
        await n.call("PUT", "/v1/kv/a", json={"value": "1", "lease": other["id"]})
        status, revoked = await n.call("DELETE", f"/v1/lease/{other['id']}")
        assert status == 200 and revoked["deleted"] == 1
        assert (await n.call("GET", "/v1/kv/a"))[0] == 404

    run_with_node(tmp_path, body)
