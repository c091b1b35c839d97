"""The applier trusts the log's commands (the leader validated them) but never dies on one."""
import orjson
import pytest

from abcd.kv import KVError, KVStore
from abcd.node.applier import Applier
from abcd.node.requests import PendingRequests, Waiter
from abcd.raft.messages import Entry


class Log:
    def __init__(self):
        self.errors = []

    def error(self, message, *args):
        self.errors.append(message.format(*args))


def make():
    requests = PendingRequests(serve_read=lambda op: None, on_not_leader=lambda items, leader: None, timeout=5.0)
    store = KVStore()
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


