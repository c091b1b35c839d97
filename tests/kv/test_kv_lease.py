"""Leases: grant, attach by put, revoke and expire (deleting keys), keepalive lookups."""
from __future__ import annotations

import pytest
from kvtest_helpers import Log, kv, raises_kv


@pytest.fixture
def log() -> Log:
    return Log()


def test_grant_allocates_increasing_ids_without_a_revision(log):
    assert log.apply(op="lease_grant", ttl=10) == {"id": 1, "ttl": 10}
    assert log.apply(op="lease_grant", ttl=5) == {"id": 2, "ttl": 5}
    assert log.store.current_revision == 1
    assert log.store.leases() == [(1, 10), (2, 5)]


def test_ids_are_never_reused_after_a_revoke(log):
    log.apply(op="lease_grant", ttl=10)
    log.apply(op="lease_revoke", lease=1)
    assert log.apply(op="lease_grant", ttl=10)["id"] == 2


def test_put_attaches_a_key_and_revoke_deletes_it_at_one_revision(log):
    lease = log.apply(op="lease_grant", ttl=10)["id"]
    log.put("a", "1", lease=lease)  # 2
    log.put("b", "1", lease=lease)  # 3
    log.put("c", "1")  # 4
    assert log.store.get("a") == kv("a", "1", 2, 2, 1, lease)
    assert log.store.lease(lease).keys == {"a", "b"}
    assert log.apply(op="lease_revoke", lease=lease) == {"id": lease, "deleted": 2, "revision": 5}
    assert [k["key"] for k in log.store.range("")[0]] == ["c"]
    events = log.store.events_since(5)
    assert [(rev, e["type"], e["kv"]["key"]) for rev, e in events] == [(5, "delete", "a"), (5, "delete", "b")]
    assert log.store.lease(lease) is None and log.store.leases() == []


def test_revoking_a_lease_without_keys_keeps_the_revision(log):
    log.apply(op="lease_grant", ttl=10)
    assert log.apply(op="lease_revoke", lease=1) == {"id": 1, "deleted": 0, "revision": 1}


def test_put_with_an_unknown_lease_is_404_and_changes_nothing(log):
    log.put("a", "1")
    with raises_kv(404, "lease_not_found", "lease 7 not found"):
        log.put("a", "2", lease=7)
    assert log.store.get("a") == kv("a", "1", 2, 2, 1)
    assert log.store.current_revision == 2


def test_revoke_of_an_unknown_lease_is_404_but_expire_is_a_no_op(log):
    with raises_kv(404, "lease_not_found", "lease 3 not found"):
        log.apply(op="lease_revoke", lease=3)
    # An expiry can race a revoke that came first; it must not fail the apply loop.
    assert log.apply(op="lease_expire", lease=3) == {"id": 3, "deleted": 0, "revision": 1}


def test_expire_deletes_the_keys_like_revoke(log):
    log.apply(op="lease_grant", ttl=1)
    log.put("session/x", "alive", lease=1)
    assert log.apply(op="lease_expire", lease=1) == {"id": 1, "deleted": 1, "revision": 3}
    assert log.store.get("session/x") is None


def test_a_put_moves_a_key_between_leases_or_detaches_it(log):
    log.apply(op="lease_grant", ttl=10)  # 1
    log.apply(op="lease_grant", ttl=10)  # 2
    log.put("a", "1", lease=1)
    log.put("a", "2", lease=2)  # moved to lease 2
    log.put("b", "1", lease=1)
    log.put("b", "2")  # detached: lease 0
    assert log.store.lease(1).keys == set() and log.store.lease(2).keys == {"a"}
    assert log.apply(op="lease_revoke", lease=1)["deleted"] == 0
    assert log.store.get("b")["lease"] == 0 and log.store.get("a")["lease"] == 2


def test_deleting_a_key_detaches_it(log):
    log.apply(op="lease_grant", ttl=10)
    log.put("a", "1", lease=1)
    log.delete("a")
    log.put("a", "again")  # not attached any more
    assert log.apply(op="lease_revoke", lease=1)["deleted"] == 0
    assert log.store.get("a")["value"] == "again"


def test_txn_puts_attach_keys_too(log):
    log.apply(op="lease_grant", ttl=10)
    log.apply(op="txn", success=[{"put": {"key": "t", "value": "1", "lease": 1}}])
    assert log.store.lease(1).keys == {"t"}
    assert log.apply(op="lease_revoke", lease=1)["deleted"] == 1


def test_keepalive_is_a_read_answering_id_and_ttl(log):
    log.apply(op="lease_grant", ttl=30)
    assert log.store.read({"op": "lease_keepalive", "lease": 1}) == {"id": 1, "ttl": 30}
    with raises_kv(404, "lease_not_found"):
        log.store.read({"op": "lease_keepalive", "lease": 2})
