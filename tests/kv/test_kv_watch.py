"""Watch history: the events of every write, events_since and listeners."""
from __future__ import annotations

import logging

import pytest
from kvtest_helpers import Log, kv, raises_kv


@pytest.fixture
def log() -> Log:
    return Log()


def tombstone(key: str, revision: int) -> dict:
    return kv(key, "", 0, revision, 0)


def test_put_and_delete_events(log):
    log.put("a", "1")
    log.put("a", "2")
    log.delete("a")
    assert log.store.events_since(1) == [
        (2, {"type": "put", "kv": kv("a", "1", 2, 2, 1), "prev_kv": None}),
        (3, {"type": "put", "kv": kv("a", "2", 2, 3, 2), "prev_kv": kv("a", "1", 2, 2, 1)}),
        (4, {"type": "delete", "kv": tombstone("a", 4), "prev_kv": kv("a", "2", 2, 3, 2)}),
    ]


def test_events_since_is_inclusive_and_filters_by_key_or_prefix(log):
    for key in ("a", "ab", "b", "a"):
        log.put(key, "x")
    assert [rev for rev, _ in log.store.events_since(3)] == [3, 4, 5]
    assert [rev for rev, _ in log.store.events_since(2, key="a")] == [2, 5]
    assert [rev for rev, _ in log.store.events_since(2, prefix="a")] == [2, 3, 5]
    assert [rev for rev, _ in log.store.events_since(2, prefix="")] == [2, 3, 4, 5]
    assert log.store.events_since(6) == []
    assert log.store.events_since(100) == []


def test_events_since_refuses_bad_arguments(log):
    with raises_kv(400, "bad_request", "start revision must be an integer of at least 1, got 0"):
        log.store.events_since(0)
    with raises_kv(400, "bad_request", "watch either a key or a prefix, not both"):
        log.store.events_since(1, key="a", prefix="a")


def test_events_below_the_compaction_point_are_gone(log):
    for i in range(5):
        log.put("k", str(i))  # revisions 2..6
    log.store.compact(4)
    with raises_kv(400, "compacted"):
        log.store.events_since(3)
    events = log.store.events_since(4)
    assert [rev for rev, _ in events] == [4, 5, 6]
    # An event keeps its prev_kv even when that version itself was compacted away.
    assert events[0][1]["prev_kv"] == kv("k", "1", 2, 3, 2)


def test_listeners_get_each_write_once_with_its_events(log):
    seen = []
    log.store.add_listener(lambda rev, events: seen.append((rev, events)))
    log.put("a", "1")
    log.delete("nothing")  # no change: no call
    log.apply(op="lease_grant", ttl=5)  # no key changed: no call
    log.apply(op="txn", success=[{"put": {"key": "b", "value": "1"}}, {"delete": {"key": "a"}}])
    with raises_kv(404, "lease_not_found"):
        log.put("c", "1", lease=99)  # failed: no call
    assert seen == [
        (2, [{"type": "put", "kv": kv("a", "1", 2, 2, 1), "prev_kv": None}]),
        (
            3,
            [
                {"type": "put", "kv": kv("b", "1", 3, 3, 1), "prev_kv": None},
                {"type": "delete", "kv": tombstone("a", 3), "prev_kv": kv("a", "1", 2, 2, 1)},
            ],
        ),
    ]
    # The listener saw exactly what a watch from the start replays.
    assert [(rev, e) for rev, events in seen for e in events] == log.store.events_since(1)


def test_a_listener_sees_the_state_after_the_write(log):
    observed = []
    log.store.add_listener(lambda rev, events: observed.append((rev, log.store.current_revision, log.store.get("a"))))
    log.put("a", "1")
    assert observed == [(2, 2, kv("a", "1", 2, 2, 1))]


def test_remove_listener(log):
    seen = []

    def listener(rev, events):
        seen.append(rev)

    log.store.add_listener(listener)
    log.put("a", "1")
    log.store.remove_listener(listener)
    log.put("a", "2")
    assert seen == [2]


def test_a_failing_listener_is_logged_and_does_not_stop_the_write(log, caplog):
    seen = []

    def broken(rev, events):
        raise RuntimeError("watcher is gone")

    log.store.add_listener(broken)
    log.store.add_listener(lambda rev, events: seen.append(rev))
    with caplog.at_level(logging.ERROR, logger="abcd.kv.store"):
        assert log.put("a", "1") == {"revision": 2, "prev_kv": None}
    assert seen == [2]
    assert log.store.get("a")["value"] == "1"
    assert "failed at revision 2" in caplog.text and "watcher is gone" in caplog.text


def test_lease_revocation_produces_delete_events(log):
    log.apply(op="lease_grant", ttl=5)
    log.put("l/1", "x", lease=1)
    log.apply(op="lease_revoke", lease=1)
    rev, event = log.store.events_since(3)[0]
    assert rev == 3 and event == {"type": "delete", "kv": tombstone("l/1", 3), "prev_kv": kv("l/1", "x", 2, 2, 1, 1)}
