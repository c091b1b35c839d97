"""Snapshots: restore gives a store that answers exactly as the original would."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kvtest_helpers import Log

from abcd.kv import KVError, KVStore, SnapshotError, encode_snapshot
from abcd.kv.snapshot import encode_json

KEYS = ["a", "b", "a/x", "a/y", "b/z", "é"]
CONFIG = {"history_limit": 4, "max_clients": 2, "client_window": 2}


def build() -> Log:
    log = Log(**CONFIG)
    log.apply(op="lease_grant", ttl=10)
    log.put("a", "1", lease=1)
    log.put("b", "1", request_id="c:1")
    log.apply(op="txn", success=[{"put": {"key": "a/x", "value": "2"}}, {"delete": {"key": "b"}}])
    log.put("a", "3")
    log.put("b/z", "4", lease=1)
    with pytest.raises(KVError):
        log.put("z", "1", lease=7, request_id="c:2")
    return log


def observe(store: KVStore) -> dict:
    """Everything a client can read, at every revision still available."""
    revisions = range(max(store.compact_revision, 1), store.current_revision + 1)
    return {
        "revision": store.current_revision,
        "compact_revision": store.compact_revision,
        "applied_index": store.applied_index,
        "leases": store.leases(),
        "lease_keys": {lid: sorted(store.lease(lid).keys) for lid, _ in store.leases()},
        "gets": {(key, rev): store.get(key, rev) for key in KEYS for rev in revisions},
        "ranges": {rev: store.range("", revision=rev) for rev in revisions},
        "events": store.events_since(max(store.compact_revision, 1)),
    }


def test_restore_gives_the_same_state_and_the_same_bytes():
    original = build().store
    data = original.snapshot()
    restored = KVStore.restore(data, **CONFIG)
    assert restored.snapshot() == data
    assert observe(restored) == observe(original)


def test_snapshot_is_json_with_the_documented_fields():
    state = json.loads(encode_json(build().store.capture()))
    assert state["format"] == "abcd-kv" and state["version"] == 2
    assert set(state) == {
        "format",
        "version",
        "applied_index",
        "revision",
        "compact_revision",
        "versions",
        "events",
        "last_lease_id",
        "leases",
        "sessions",
        "auth",
    }


def test_a_capture_is_not_changed_by_later_writes():
    log = build()
    state = log.store.capture()
    expected = log.store.snapshot()
    log.put("a", "later")
    log.delete("a/x")
    log.apply(op="lease_revoke", lease=1)
    assert encode_snapshot(state) == expected


def test_restored_events_share_kvs_with_the_versions():
    # White box: the held KV tuples are shared, as in a live store.
    restored = KVStore.restore(build().store.snapshot(), **CONFIG)
    mvcc = restored._mvcc
    rev, (kv, prev) = mvcc.events_since(restored.current_revision)[-1]
    assert kv is mvcc.live[kv[0]]


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\xff\xfe", "snapshot is not valid JSON"),
        (b'{"format": "abcd-kv", "version": 1', "snapshot is not valid JSON"),
        (b"[]", "snapshot is not an abcd-kv snapshot"),
        (b'{"format": "etcd"}', "snapshot is not an abcd-kv snapshot"),
        (b'{"format": "abcd-kv", "version": 9}', "snapshot format version 9 is not supported (this abcd reads versions 1, 2 and 3)"),
        (b'{"format": "abcd-kv", "version": 1}', "snapshot is not valid: KeyError: 'applied_index'"),
    ],
)
def test_a_bad_snapshot_is_refused_with_a_reason(data, message):
    with pytest.raises(SnapshotError) as info:
        KVStore.restore(data)
    assert str(info.value).startswith(message)


def as_version_1(data: bytes) -> bytes:
    """A version-2 document written as abcd wrote snapshots before version 2: every KV
    in full, in the version lists and again in the events."""
    state = json.loads(data)
    versions = {
        key: [dict(zip(("value", "create_revision", "mod_revision", "version", "lease"), v), key=key) for v in vs]
        for key, vs in state["versions"]
    }

    def full(event):
        if isinstance(event, dict):
            return event
        key, i, j = event
        kv = versions[key][i]
        return {"type": "put" if kv["version"] else "delete", "kv": kv, "prev_kv": versions[key][j] if j >= 0 else None}

    state.update(
        version=1,
        versions=[[key, vs] for key, vs in versions.items()],
        events=[[rev, [full(e) for e in events]] for rev, events in state["events"]],
    )
    return json.dumps(state).encode()


def test_a_version_1_snapshot_still_restores_to_the_same_state():
    original = build().store
    old = as_version_1(encode_json(original.capture()))
    assert json.loads(old)["version"] == 1
    restored = KVStore.restore(old, **CONFIG)
    assert observe(restored) == observe(original)
    assert restored.snapshot() == original.snapshot()  # written again in the packed format


def test_a_version_2_snapshot_still_restores_to_the_same_state():
    # What abcd wrote before the packed format: a node upgraded starts from it.
    original = build().store
    old = encode_json(original.capture())
    assert json.loads(old)["version"] == 2 and not old.startswith(b"ABCD-KV")
    restored = KVStore.restore(old, **CONFIG)
    assert observe(restored) == observe(original)
    assert restored.snapshot() == original.snapshot()


def test_version_2_writes_each_kv_once_and_is_much_smaller():
    log = Log(history_limit=1000)
    for round_ in range(3):
        for i in range(200):
            log.put(f"key-{i:04d}", f"{round_}" * 100)
    data = encode_json(log.store.capture())
    assert len(data) < 0.5 * len(as_version_1(data))
    assert data.count(b"1" * 100) == 200  # each value of the second round: once


def test_an_event_whose_kv_was_trimmed_is_written_in_full():
    log = Log(history_limit=None)
    log.put("gone", "1")
    deleted = log.delete("gone")["revision"]
    log.store.compact(deleted)  # the tombstone at the compaction point is trimmed; its event stays
    state = json.loads(encode_json(log.store.capture()))
    [[rev, [event]]] = state["events"]
    assert rev == deleted and event["type"] == "delete" and event["kv"]["key"] == "gone"
    restored = KVStore.restore(log.store.snapshot(), history_limit=None)
    assert restored.events_since(deleted) == log.store.events_since(deleted)


def test_two_versions_of_a_key_at_one_revision_are_told_apart_by_identity():
    # Commands never write a key twice in one revision (a txn branch may not), but the
    # multi-version table allows it, and the compact form must not confuse the two.
    from abcd.kv import mvcc_capture
    from abcd.kv.mvcc import MVCC
    from abcd.kv.snapshot import plain

    mvcc = MVCC()
    first, _ = mvcc.put("a", "1", 0, 2)
    second, prev = mvcc.put("a", "2", 0, 2)
    mvcc.commit(2, [(first, None), (second, prev)])
    state = json.loads(json.dumps(plain({"version": 2, **mvcc_capture.captured(mvcc.capture())})))
    assert state["events"] == [[2, [["a", 0, -1], ["a", 1, 0]]]]
    restored = mvcc_capture.load(state, None)
    [(_, (one, _)), (_, (two, two_prev))] = restored.events_since(2)
    assert one[1] == "1" and two[1] == "2" and two_prev is one
    assert restored.get("a")[1] == "2"


def point_event_at_an_older_version(state: dict) -> None:
    for _, events in state["events"]:
        for event in events:
            if isinstance(event, list) and event[1] >= 1:
                event[1:] = [event[1] - 1, -1]
                return
    raise AssertionError("build() makes an event on a key's second version")


def corrupt(change) -> bytes:
    state = json.loads(encode_json(build().store.capture()))
    change(state)
    return json.dumps(state).encode()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: s.update(revision=-1), "revision must be a non-negative integer"),
        (lambda s: s["versions"][0][1][0].pop(), "bad version of key 'a'"),
        (lambda s: s["versions"][0][1][0].__setitem__(0, 1), "bad version of key 'a'"),
        (lambda s: s["versions"][0][1].reverse(), "the versions of key 'a' are not in revision order"),
        (lambda s: s["versions"][0][1].clear(), "bad version list"),
        (lambda s: s["events"][0][1][0].__setitem__(1, 99), "names no version"),
        (lambda s: s["events"][0][1][0].__setitem__(0, "nokey"), "names no version"),
        (lambda s: point_event_at_an_older_version(s), "does not match its versions"),
        (lambda s: s["events"][0][1][0].append(0), "bad event"),
        (lambda s: s["events"][0][1].__setitem__(0, {"type": "touch"}), "bad event"),
        (lambda s: s["events"].reverse(), "bad event record"),
        (lambda s: s.update(leases=[]), "which does not exist"),
        (lambda s: s.update(last_lease_id=0), "last_lease_id 0 is below a lease id"),
        (lambda s: s["sessions"][0][2][0].__setitem__(1, None), "bad outcome for request"),
        (lambda s: s.update(compact_revision=99), "revisions are inconsistent"),
    ],
)
def test_a_corrupt_snapshot_is_refused_with_a_reason(change, message):
    with pytest.raises(SnapshotError, match="snapshot is not valid") as info:
        KVStore.restore(corrupt(change), **CONFIG)
    assert message in str(info.value)


# --------------------------------------------------------------------------- property

keys = st.sampled_from(KEYS)
values = st.sampled_from(["", "1", "2", "ü"])
request_ids = st.one_of(st.none(), st.builds("{}:{}".format, st.sampled_from(["c", "d", "e"]), st.integers(1, 6)))
leases = st.integers(0, 3)


def with_request_id(cmd: dict, request_id: str | None) -> dict:
    return cmd if request_id is None else {**cmd, "request_id": request_id}


put = st.builds(lambda k, v, l: {"op": "put", "key": k, "value": v, "lease": l}, keys, values, leases)
delete = st.builds(lambda k, p: {"op": "delete", "key": k, "prefix": p}, st.sampled_from(KEYS + ["a/", "b"]), st.booleans())
compare = st.one_of(
    st.builds(lambda k, o, v: {"key": k, "target": "value", "op": o, "value": v}, keys, st.sampled_from(["==", "!=", "<", ">"]), values),
    st.builds(
        lambda k, t, o, v: {"key": k, "target": t, "op": o, "value": v},
        keys,
        st.sampled_from(["version", "mod_revision", "create_revision"]),
        st.sampled_from(["==", "!=", "<", ">"]),
        st.integers(0, 8),
    ),
)
txn_op = st.one_of(
    st.builds(lambda k, v, l: {"put": {"key": k, "value": v, "lease": l}}, keys, values, leases),
    st.builds(lambda k: {"get": {"key": k}}, keys),
    st.builds(lambda k: {"delete": {"key": k}}, keys),
)
txn = st.builds(
    lambda c, s, f: {"op": "txn", "compare": c, "success": s, "failure": f},
    st.lists(compare, max_size=2),
    st.lists(txn_op, max_size=3),
    st.lists(txn_op, max_size=2),
)
lease_cmd = st.one_of(
    st.builds(lambda t: {"op": "lease_grant", "ttl": t}, st.integers(1, 100)),
    st.builds(lambda i: {"op": "lease_revoke", "lease": i}, st.integers(1, 3)),
    st.builds(lambda i: {"op": "lease_expire", "lease": i}, st.integers(1, 3)),
)
compact = st.builds(lambda r: {"op": "compact", "revision": r}, st.integers(1, 30))
command = st.builds(with_request_id, st.one_of(put, put, delete, txn, txn, lease_cmd, compact), request_ids)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(command, max_size=40), data=st.data())
def test_snapshot_at_any_point_then_continuing_gives_the_same_results(commands, data):
    cut = data.draw(st.integers(0, len(commands)), label="snapshot after")
    straight = Log(**CONFIG)
    answers = [straight.outcome(dict(c)) for c in commands]

    first = Log(**CONFIG)
    for c in commands[:cut]:
        first.outcome(dict(c))
    resumed = Log(KVStore.restore(first.store.snapshot(), **CONFIG))
    answers_after = [resumed.outcome(dict(c)) for c in commands[cut:]]

    assert answers_after == answers[cut:]
    assert resumed.store.snapshot() == straight.store.snapshot()
    assert observe(resumed.store) == observe(straight.store)


# --------------------------------------------------------------------------- replacing a live store's state


def test_replace_state_moves_a_restored_state_into_the_same_store_and_tells_its_listeners():
    live = Log(**CONFIG)
    live.put("mine", "1")
    store = live.store
    commits, restores = [], []
    store.add_listener(lambda rev, events: commits.append(rev))
    store.add_restore_listener(lambda: restores.append(store.current_revision))
    leader = build().store
    restored = KVStore.from_capture(json.loads(encode_json(leader.capture())), **store.bounds())
    store.replace_state(restored)
    assert observe(store) == observe(leader)
    assert restores == [leader.current_revision] and commits == []
    # Commit listeners stay registered on the same object and see what follows.
    store.apply({"op": "put", "key": "after", "value": "x", "lease": 0}, index=store.applied_index + 1)
    assert commits == [store.current_revision]
    # The bounds are the live store's, not the defaults.
    assert store._mvcc.history_limit == CONFIG["history_limit"]
    assert store._sessions.window == CONFIG["client_window"]


def test_a_failing_restore_listener_does_not_stop_the_others():
    store = KVStore()
    called = []

    def broken():
        raise RuntimeError("watch went away")

    store.add_restore_listener(broken)
    store.add_restore_listener(lambda: called.append(True))
    store.replace_state(build().store)
    assert called == [True]
    store.remove_restore_listener(broken)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(command, max_size=40), data=st.data())
def test_a_capture_stays_the_state_at_its_point_whatever_is_applied_after(commands, data):
    # Captures share the live version lists (copy on write): writes, deletes and the
    # automatic compaction after a capture, and a second capture, must not show in it.
    first_cut = data.draw(st.integers(0, len(commands)), label="first capture after")
    second_cut = data.draw(st.integers(first_cut, len(commands)), label="second capture after")
    log = Log(**CONFIG)
    for c in commands[:first_cut]:
        log.outcome(dict(c))
    first, first_bytes = log.store.capture(), log.store.snapshot()
    for c in commands[first_cut:second_cut]:
        log.outcome(dict(c))
    second, second_bytes = log.store.capture(), log.store.snapshot()
    for c in commands[second_cut:]:
        log.outcome(dict(c))
    assert encode_snapshot(first) == first_bytes
    assert encode_snapshot(second) == second_bytes
