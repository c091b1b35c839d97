"""KVStore: response shapes, revisions, reads at old revisions, compaction, apply rules."""
from __future__ import annotations

import pytest
from kvtest_helpers import KV_FIELDS, Log, kv, raises_kv

from abcd.kv import KVError, KVStore
from abcd.kv.snapshot import encode_json


@pytest.fixture
def log() -> Log:
    return Log()


def test_an_empty_store_is_at_revision_1(log):
    assert log.store.current_revision == 1
    assert log.store.applied_index == 0
    assert log.store.get("a") is None
    assert log.store.range("") == ([], False)
    assert log.store.read({"op": "range", "prefix": ""}) == {"kvs": [], "more": False, "revision": 1}


def test_put_answers_revision_and_prev_kv(log):
    first = log.put("a", "1")
    assert first == {"revision": 2, "prev_kv": None}
    second = log.put("a", "2")
    assert second == {"revision": 3, "prev_kv": kv("a", "1", 2, 2, 1)}
    assert set(second["prev_kv"]) == KV_FIELDS


def test_get_answers_kv_and_current_revision(log):
    log.put("a", "1")
    log.put("b", "2")
    body = log.store.read({"op": "get", "key": "a"})
    assert body == {"kv": kv("a", "1", 2, 2, 1), "revision": 3}
    assert set(body["kv"]) == KV_FIELDS


def test_get_of_an_absent_key_is_404_not_found(log):
    with raises_kv(404, "not_found", "key 'nope' not found"):
        log.store.read({"op": "get", "key": "nope"})


def test_revisions_and_versions_across_put_put_delete_put(log):
    assert log.put("a", "1") == {"revision": 2, "prev_kv": None}
    assert log.put("a", "2")["revision"] == 3
    assert log.store.get("a") == kv("a", "2", 2, 3, 2)
    assert log.delete("a") == {"deleted": 1, "revision": 4}
    assert log.store.get("a") is None
    # A key created again starts a new life: new create_revision, version 1.
    assert log.put("a", "3") == {"revision": 5, "prev_kv": None}
    assert log.store.get("a") == kv("a", "3", 5, 5, 1)
    assert log.store.current_revision == 5


def test_a_delete_that_deletes_nothing_keeps_the_revision(log):
    log.put("a", "1")
    assert log.delete("b") == {"deleted": 0, "revision": 2}
    assert log.delete("b", prefix=True) == {"deleted": 0, "revision": 2}
    assert log.store.current_revision == 2


def test_delete_prefix_deletes_every_key_under_it_at_one_revision(log):
    for key in ("a/1", "a/2", "a", "ab", "b"):
        log.put(key, "x")
    assert log.delete("a/", prefix=True) == {"deleted": 2, "revision": 7}
    assert [k["key"] for k in log.store.range("")[0]] == ["a", "ab", "b"]
    assert [(rev, e["kv"]["key"]) for rev, e in log.store.events_since(7)] == [(7, "a/1"), (7, "a/2")]


def test_range_is_sorted_by_key_with_limit_and_more(log):
    for key in ("p/c", "p/a", "q", "p/b", "o"):
        log.put(key, key.upper())
    kvs, more = log.store.range("p/")
    assert [k["key"] for k in kvs] == ["p/a", "p/b", "p/c"] and more is False
    kvs, more = log.store.range("p/", limit=2)
    assert [k["key"] for k in kvs] == ["p/a", "p/b"] and more is True
    assert log.store.range("p/", limit=3)[1] is False
    assert log.store.range("p/", limit=0)[1] is False
    body = log.store.read({"op": "range", "prefix": "p/", "limit": 1})
    assert body == {"kvs": [kv("p/a", "P/A", 3, 3, 1)], "more": True, "revision": 6}
    assert [k["key"] for k in log.store.range("")[0]] == ["o", "p/a", "p/b", "p/c", "q"]


def test_range_skips_deleted_keys_and_orders_like_utf8_bytes(log):
    keys = ["\U0001f600", "\uffff", "a", "é", "z", "a\x00"]
    for key in keys:
        log.put(key, "v")
    log.delete("z")
    got = [k["key"] for k in log.store.range("")[0]]
    assert got == sorted((k for k in keys if k != "z"), key=lambda k: k.encode())


def test_get_and_range_at_old_revisions(log):
    log.put("a", "1")  # 2
    log.put("b", "1")  # 3
    log.put("a", "2")  # 4
    log.delete("b")  # 5
    log.put("b", "2")  # 6
    store = log.store
    assert store.get("a", 1) is None
    assert store.get("a", 2) == kv("a", "1", 2, 2, 1)
    assert store.get("a", 3) == kv("a", "1", 2, 2, 1)
    assert store.get("a", 4) == kv("a", "2", 2, 4, 2)
    assert store.get("b", 5) is None
    assert store.get("b", 6) == kv("b", "2", 6, 6, 1)
    assert [k["value"] for k in store.range("", revision=3)[0]] == ["1", "1"]
    assert [k["key"] for k in store.range("", revision=5)[0]] == ["a"]
    assert store.range("", limit=1, revision=4) == ([kv("a", "2", 2, 4, 2)], True)
    # The response revision is the current one, as etcd's header revision.
    assert store.read({"op": "get", "key": "a", "revision": 2}) == {"kv": kv("a", "1", 2, 2, 1), "revision": 6}
    with raises_kv(404, "not_found"):
        store.read({"op": "get", "key": "b", "revision": 5})


def test_a_future_revision_is_refused(log):
    log.put("a", "1")
    with raises_kv(400, "future_revision", "revision 3 is in the future; the current revision is 2"):
        log.store.get("a", 3)
    with raises_kv(400, "future_revision"):
        log.store.range("", revision=9)
    with raises_kv(400, "future_revision"):
        log.store.read({"op": "get", "key": "a", "revision": 3})
    with raises_kv(400, "bad_request", "revision must be at least 0 (0: the latest), got -1"):
        log.store.get("a", -1)


def test_compaction_refuses_reads_below_it_and_keeps_what_is_visible_at_it(log):
    log.put("a", "1")  # 2
    log.put("a", "2")  # 3
    log.put("b", "1")  # 4
    log.delete("b")  # 5
    log.put("a", "3")  # 6
    log.store.compact(4)
    assert log.store.compact_revision == 4
    msg = "revision 3 has been compacted; the oldest revision still available is 4"
    with raises_kv(400, "compacted", msg):
        log.store.get("a", 3)
    with raises_kv(400, "compacted"):
        log.store.range("", revision=2)
    with raises_kv(400, "compacted"):
        log.store.events_since(3)
    assert log.store.get("a", 4) == kv("a", "2", 2, 3, 2)
    assert log.store.get("b", 4) == kv("b", "1", 4, 4, 1)
    assert log.store.get("a") == kv("a", "3", 2, 6, 3)
    assert [rev for rev, _ in log.store.events_since(4)] == [4, 5, 6]
    with raises_kv(400, "compacted"):
        log.store.compact(4)
    with raises_kv(400, "future_revision"):
        log.store.compact(7)


def test_compaction_forgets_deleted_keys_entirely(log):
    log.put("gone", "x")  # 2
    log.delete("gone")  # 3
    log.put("kept", "y")  # 4
    log.store.compact(4)
    # White box: nothing remains of a key that no read at or after 4 can see.
    assert "gone" not in log.store._mvcc._versions
    assert list(log.store._mvcc._index) == ["kept"]
    assert log.store.get("gone", 4) is None
    assert log.store.range("", revision=4)[0] == [kv("kept", "y", 4, 4, 1)]


def test_automatic_compaction_keeps_the_history_limit_and_at_most_a_sixteenth_more():
    log = Log(history_limit=32)
    for i in range(100):
        log.put(f"k{i % 3}", str(i))
    store = log.store
    assert store.current_revision == 101
    assert 101 - 32 - 2 < store.compact_revision <= 101 - 32
    assert len(store._mvcc._event_revs) <= 32 + 2
    log = Log(history_limit=5)
    for i in range(30):
        log.put(f"k{i % 3}", str(i))
    store = log.store
    assert store.current_revision == 31
    assert 31 - 6 < store.compact_revision <= 31 - 5
    assert [k["value"] for k in store.range("")[0]] == ["27", "28", "29"]
    first_kept = store.compact_revision
    assert store.events_since(first_kept)[0][0] == first_kept
    with raises_kv(400, "compacted"):
        store.get("k0", first_kept - 1)
    # History stays bounded (white box): at most 2 * limit revisions of events.
    assert len(store._mvcc._event_revs) <= 10
    assert all(len(v) <= 11 for v in store._mvcc._versions.values())


def test_the_compact_command_compacts_through_the_log(log):
    for i in range(5):
        log.put("a", str(i))
    assert log.apply(op="compact", revision=4) == {"compact_revision": 4, "revision": 6}
    with raises_kv(400, "compacted"):
        log.store.get("a", 3)
    # Compacting again at or below the compaction point says where the history starts now.
    msg = "the history is already compacted up to revision 4: compact at a later revision than 4"
    with raises_kv(400, "compacted", msg):
        log.apply(op="compact", revision=4)


def test_apply_needs_increasing_log_indexes_and_counts_failed_commands(log):
    log.put("a", "1")
    with pytest.raises(ValueError, match="log index 1 is not after applied_index 1"):
        log.store.apply({"op": "put", "key": "a", "value": "2"}, index=1)
    log.store.mark_applied(5)  # a no-op or configuration entry
    assert log.store.applied_index == 5
    with raises_kv(404, "lease_not_found"):
        log.store.apply({"op": "put", "key": "a", "value": "2", "lease": 9}, index=6)
    assert log.store.applied_index == 6
    assert log.store.get("a")["value"] == "1" and log.store.current_revision == 2


def test_apply_refuses_a_malformed_command_without_changing_anything(log):
    log.put("a", "1")
    before = encode_json(log.store.capture())
    with raises_kv(400, "bad_request", "value must be a string, got number"):
        log.apply(op="put", key="a", value=3)
    with raises_kv(400, "bad_request"):
        log.store.apply(["not", "a", "dict"], index=log.index + 10)
    after = encode_json(log.store.capture())
    assert before.replace(b'"applied_index":1', b"") == after.replace(b'"applied_index":12', b"")


def test_apply_of_a_read_answers_it_from_the_applied_state(log):
    log.put("a", "1")
    assert log.apply(op="get", key="a") == {"kv": kv("a", "1", 2, 2, 1), "revision": 2}
    assert log.store.current_revision == 2


def test_read_refuses_writes_and_internal_commands(log):
    with pytest.raises(ValueError, match="put changes state"):
        log.store.read({"op": "put", "key": "a", "value": "1"})
    with raises_kv(400, "bad_request"):
        log.store.read({"op": "lease_expire", "lease": 1})


def test_returned_kvs_are_the_callers_own(log):
    # The store holds each KV as an immutable tuple and hands out a dict made from it:
    # a later write does not change a KV already returned, nor does a caller's change
    # reach the store.
    log.put("a", "1")
    first = log.store.get("a")
    log.put("a", "2")
    assert first == kv("a", "1", 2, 2, 1)
    first["value"] = "changed by the caller"
    assert log.store.get("a", 2) == kv("a", "1", 2, 2, 1)


def test_kverror_body_and_equality():
    error = KVError(413, "too_large", "value is 1048577 bytes; the limit is 1048576")
    assert error.body() == {"error": "value is 1048577 bytes; the limit is 1048576", "code": "too_large"}
    assert error == KVError(413, "too_large", "value is 1048577 bytes; the limit is 1048576")
    assert error != KVError(400, "too_large", "value is 1048577 bytes; the limit is 1048576")
    assert str(error) == error.message


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        KVStore(history_limit=0)
    with pytest.raises(ValueError):
        KVStore(max_clients=0)
    assert len(KVStore()) == 0
