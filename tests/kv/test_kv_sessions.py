"""Exactly-once application of retried writes (request_id "client:seq")."""
from __future__ import annotations

from kvtest_helpers import Log, raises_kv

from abcd.kv import KVStore


def test_a_retry_returns_the_same_response_without_applying_again():
    log = Log()
    calls = []
    log.store.add_listener(lambda rev, events: calls.append(rev))
    first = log.put("a", "1", request_id="c7:41")
    log.put("b", "1")  # someone else writes in between
    retry = log.put("a", "1", request_id="c7:41")
    assert retry == first == {"revision": 2, "prev_kv": None}
    assert log.store.current_revision == 3
    assert log.store.get("a")["version"] == 1
    assert calls == [2, 3]
    assert [rev for rev, _ in log.store.events_since(1)] == [2, 3]


def test_each_seq_is_applied_once():
    log = Log()
    log.put("n", "1", request_id="c:1")
    log.put("n", "2", request_id="c:2")
    log.put("n", "1", request_id="c:1")
    current = log.store.get("n")
    assert (current["value"], current["version"]) == ("2", 2)


def test_a_failed_request_fails_the_same_way_when_retried():
    log = Log()
    with raises_kv(404, "lease_not_found", "lease 1 not found"):
        log.put("a", "1", lease=1, request_id="c:1")
    log.apply(op="lease_grant", ttl=10)  # lease 1 exists now ...
    with raises_kv(404, "lease_not_found", "lease 1 not found"):
        log.put("a", "1", lease=1, request_id="c:1")  # ... yet the answer to c:1 stays
    assert log.store.get("a") is None


def test_dedup_covers_txn_delete_and_leases():
    log = Log()
    grant = log.apply(op="lease_grant", ttl=5, request_id="c:1")
    assert log.apply(op="lease_grant", ttl=5, request_id="c:1") == grant
    assert log.store.leases() == [(1, 5)]
    log.put("x", "1")
    cmd = {"op": "txn", "compare": [], "success": [{"put": {"key": "x", "value": "2"}}], "request_id": "c:2"}
    first = log.apply_cmd(dict(cmd))
    assert log.apply_cmd(dict(cmd)) == first
    assert log.store.get("x")["version"] == 2
    deleted = log.delete("x", request_id="c:3")
    log.put("x", "3")
    assert log.delete("x", request_id="c:3") == deleted == {"deleted": 1, "revision": 4}
    assert log.store.get("x")["value"] == "3"


def test_clients_are_independent_and_seq_spelling_is_normalized():
    log = Log()
    log.put("a", "1", request_id="alice:1")
    assert log.put("a", "2", request_id="bob:1") == {"revision": 3, "prev_kv": log.store.get("a", 2)}
    assert log.put("a", "9", request_id="alice:001")["revision"] == 2  # same request as alice:1
    # A client id may itself contain colons: the seq is after the last one.
    log.put("b", "1", request_id="host:42:1")
    assert log.put("b", "1", request_id="host:42:1")["revision"] == 4


def test_pipelined_requests_may_be_retried_in_any_order_within_the_window():
    log = Log(client_window=4)
    log.put("k", "5", request_id="c:5")
    log.put("k", "7", request_id="c:7")  # 6 was lost, 7 made it
    assert log.put("k", "6", request_id="c:6")["revision"] == 4  # applied now, not a duplicate
    assert log.put("k", "5", request_id="c:5")["revision"] == 2


def test_a_request_older_than_the_window_is_refused_as_stale():
    log = Log(client_window=3)
    for seq in range(1, 6):
        log.put("k", str(seq), request_id=f"c:{seq}")
    # Seqs 1 and 2 were forgotten: applying them again could apply them twice.
    message = (
        "request c:2 is older than the last 3 requests applied for its client; it was not "
        "applied now, and whether an earlier attempt was applied is unknown"
    )
    with raises_kv(400, "duplicate_stale", message):
        log.put("k", "2", request_id="c:2")
    assert log.store.get("k")["value"] == "5"
    assert log.put("k", "3", request_id="c:3")["revision"] == 4  # still remembered
    assert log.put("k", "6", request_id="c:6")["revision"] == 7


def test_the_least_recently_applied_client_is_evicted():
    log = Log(max_clients=2)
    log.put("k", "a", request_id="a:1")
    log.put("k", "b", request_id="b:1")
    log.put("k", "a2", request_id="a:2")  # a is now more recent than b
    log.put("k", "c", request_id="c:1")  # evicts b
    assert len(log.store._sessions) == 2
    assert log.put("k", "a", request_id="a:1")["revision"] == 2  # a is remembered
    # b was forgotten: its retry is applied again (the documented cost of the bound).
    assert log.put("k", "b", request_id="b:1")["revision"] == 6


def test_reads_are_not_recorded():
    log = Log()
    log.put("a", "1")
    log.apply(op="get", key="a", request_id="r:1")
    assert len(log.store._sessions) == 0


def test_sessions_survive_snapshot_and_restore():
    log = Log(client_window=2)
    for seq in range(1, 4):
        log.put("k", str(seq), request_id=f"c:{seq}")
    with raises_kv(404, "lease_not_found"):
        log.put("z", "1", lease=3, request_id="d:1")
    restored = Log(KVStore.restore(log.store.snapshot(), client_window=2))
    assert restored.put("k", "3", request_id="c:3") == {"revision": 4, "prev_kv": log.store.get("k", 3)}
    with raises_kv(400, "duplicate_stale"):
        restored.put("k", "1", request_id="c:1")
    with raises_kv(404, "lease_not_found"):
        restored.put("z", "1", lease=3, request_id="d:1")
    assert restored.store.current_revision == 4


def test_restoring_with_smaller_bounds_keeps_the_most_recent():
    log = Log()
    for client in "abc":
        for seq in (1, 2, 3):
            log.put(client, str(seq), request_id=f"{client}:{seq}")
    restored = Log(KVStore.restore(log.store.snapshot(), max_clients=2, client_window=2))
    assert len(restored.store._sessions) == 2
    with raises_kv(400, "duplicate_stale"):
        restored.put("c", "1", request_id="c:1")
    assert restored.put("c", "2", request_id="c:2")["revision"] == 9
    # Client a was the least recently applied: forgotten, so its seq 3 applies again.
    assert restored.put("a", "3", request_id="a:3")["revision"] == 11
