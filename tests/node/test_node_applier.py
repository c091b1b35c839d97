"""The applier trusts the log's commands (the leader validated them) but never dies on one."""
import orjson
import pytest

from abcd.kv import KVError, KVStore
from abcd.node.applier import Applier
from abcd.node.requests import ClientRead, ClientWrite, PendingRequests, Waiter
from abcd.raft.effects import Accepted, Apply, ReadReady, Reply, Restore
from abcd.raft.messages import Entry, Snapshot

from node_fakes import record_of


class Log:
    def __init__(self):
        self.errors = []

    def error(self, message, *args):
        self.errors.append(message.format(*args))


def make():
    store = KVStore()
    requests = PendingRequests(
        serve_read=lambda op: None, on_not_leader=lambda items, leader: None,
        applied_index=lambda: store.applied_index, timeout=5.0,
    )
    log = Log()
    return Applier(store, requests, logger=log), store, log


def put(key, value):
    return orjson.dumps({"op": "put", "key": key, "value": value, "lease": 0})


def test_normalized_commands_are_applied_in_order():
    applier, store, _ = make()
    applier.apply([Entry(1, 1, put("a", "1")), Entry(1, 2, put("a", "2"))])
    assert store.applied_index == 2
    assert store.read({"op": "get", "key": "a", "revision": 0, "serializable": True})["kv"]["value"] == "2"


def test_a_malformed_command_in_the_log_is_skipped_with_an_error_and_applying_goes_on():
    applier, store, log = make()
    bad = [b"[1, 2]", orjson.dumps({"op": "put", "key": "x"}), b"not json"]
    entries = [Entry(1, i + 1, data) for i, data in enumerate(bad)] + [Entry(1, 4, put("b", "ok"))]
    applier.apply(entries)
    assert store.applied_index == 4
    assert applier.commands_failed == 3
    assert len(log.errors) == 3 and all("entry" in e for e in log.errors)
    assert store.read({"op": "get", "key": "b", "revision": 0, "serializable": True})["kv"]["value"] == "ok"
    with pytest.raises(KVError, match="not found"):
        store.read({"op": "get", "key": "x", "revision": 0, "serializable": True})



def test_a_response_is_made_only_for_a_write_that_waits_for_it(monkeypatch):
    from abcd.node import responses

    applier, store, _ = make()
    requests = applier._requests
    made = []
    real_ok = responses.ok
    monkeypatch.setattr(responses, "ok", lambda body: made.append(body) or real_ok(body))
    # A follower: nothing waits, so applying makes no Response at all.
    applier.apply([Entry(1, 1, put("a", "1")), Entry(1, 2, put("a", "2"))])
    assert made == [] and store.applied_index == 2
    # A leader: the write accepted at index 4 gets its answer; index 3 makes none.
    answers = []
    op = orjson.loads(put("b", "2"))
    write = ClientWrite(put("b", "2"), op, Waiter(answers.append, deadline=100.0))
    requests.expect_apply(4, 1, write)
    applier.apply([Entry(1, 3, put("b", "1")), Entry(1, 4, put("b", "2"))])
    assert len(made) == 1 and store.applied_index == 4
    assert answers[0].status == 200 and answers[0].body["prev_kv"]["value"] == "1"


def test_a_leader_applies_its_own_proposal_as_validated_and_another_term_s_entry_from_its_bytes(monkeypatch):
    from abcd.node import applier as applier_module

    applier, store, _ = make()
    requests = applier._requests
    parsed = []
    real_loads = orjson.loads
    monkeypatch.setattr(applier_module.orjson, "loads", lambda data: parsed.append(data) or real_loads(data))
    answers = []
    mine = {"op": "put", "key": "k", "value": "mine", "lease": 0}
    requests.expect_apply(1, 1, ClientWrite(orjson.dumps(mine), mine, Waiter(answers.append, deadline=100.0)))
    requests.expect_apply(2, 1, ClientWrite(orjson.dumps(mine), mine, Waiter(answers.append, deadline=100.0)))
    # Index 1 holds our entry (same term): applied without parsing.  Index 2 holds a
    # new leader's entry of term 2: its bytes are what counts, and our write was lost.
    applier.apply([Entry(1, 1, orjson.dumps(mine)), Entry(2, 2, put("k", "theirs"))])
    assert parsed == [put("k", "theirs")]
    assert store.get("k")["value"] == "theirs" and store.get("k")["version"] == 2
    assert answers[0].status == 200 and answers[1].body["code"] == "proposal_dropped"



# --------------------------------------------------------------------------- Restore


def leader_state(index, **keys):
    store = KVStore()
    for i, (key, value) in enumerate(keys.items(), start=1):
        store.apply({"op": "put", "key": key, "value": value, "lease": 0}, index=i)
    store.mark_applied(index)
    return store


def test_a_restore_replaces_the_state_in_place_and_settles_what_waited():
    requests = PendingRequests(
        serve_read=lambda op: ("read at", store.applied_index), on_not_leader=lambda items, leader: None,
        applied_index=lambda: store.applied_index, timeout=5.0,
    )
    store = KVStore()
    restored, restore_calls = [], []
    snapshot = leader_state(50, a="from-leader", b="2")
    applier = Applier(store, requests, load_snapshot=lambda r: snapshot, on_restored=restored.append)
    store.add_restore_listener(lambda: restore_calls.append(store.applied_index))
    applier.apply([Entry(1, 1, put("a", "mine")), Entry(1, 2, put("x", "gone"))])
    # A write accepted at index 40 (overtaken by the snapshot) and one at 60 (not);
    # a read waiting for index 45 and one waiting for 55.
    answers = {}

    def waiter(name, write=True):
        return Waiter(lambda response: answers.__setitem__(name, response), 1e9, is_write=write)

    requests.to_events([ClientWrite(b"w40", {}, waiter("w40"))])
    requests.to_events([ClientWrite(b"w60", {}, waiter("w60"))])
    requests.on_reply(Reply(1, Accepted(2, 40, 40)))
    requests.on_reply(Reply(2, Accepted(2, 60, 60)))
    for tag, (name, read_index) in enumerate((("r45", 45), ("r55", 55)), start=3):
        requests.to_events([ClientRead({"op": "get"}, waiter(name, write=False))])
        requests.on_reply(Reply(tag, ReadReady(read_index)))

    effect = Restore(Snapshot(50, 2, frozenset({1})), b"wire bytes")
    applier.on_record(record_of([effect]))

    assert applier._store is store and store.applied_index == 50  # the same object, new state
    assert store.get("a")["value"] == "from-leader" and store.get("x") is None
    assert restore_calls == [50] and restored == [effect] and applier.snapshots_restored == 1
    assert answers["w40"].status == 504 and "installed the leader's snapshot through index 50" in answers["w40"].body["error"]
    assert answers["r45"] == ("read at", 50)
    assert "w60" not in answers and "r55" not in answers
    # The log goes on after the snapshot.
    applier.on_record(record_of([Apply((Entry(2, 51, put("c", "3")),))]))
    assert store.applied_index == 51 and store.get("c")["value"] == "3"


def test_a_restore_that_would_go_back_is_refused():
    applier, store, _ = make()
    applier.apply([Entry(1, 1, put("a", "1")), Entry(1, 2, put("a", "2"))])
    applier._load_snapshot = lambda r: leader_state(2)
    with pytest.raises(RuntimeError, match="refusing to restore a snapshot at index 2: 2 is applied"):
        applier.restore(Restore(Snapshot(2, 1, frozenset({1})), b""))
    assert store.get("a")["value"] == "2"
