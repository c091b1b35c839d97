"""Transactions: compares on every target with every operator, branches, responses."""
from __future__ import annotations

import pytest
from kvtest_helpers import Log, kv, raises_kv


@pytest.fixture
def log() -> Log:
    # "k" ends up with value "m", version 2, create_revision 2, mod_revision 4.
    log = Log()
    log.put("k", "a")  # 2
    log.put("other", "x")  # 3
    log.put("k", "m")  # 4
    return log


def txn(log: Log, compare: list, success=None, failure=None) -> dict:
    cmd = {"op": "txn", "compare": compare}
    if success is not None:
        cmd["success"] = success
    if failure is not None:
        cmd["failure"] = failure
    return log.apply_cmd(cmd)


CASES = [
    # target, op, value, expected outcome against k = ("m", version 2, create 2, mod 4)
    ("value", "==", "m", True),
    ("value", "==", "n", False),
    ("value", "!=", "n", True),
    ("value", "!=", "m", False),
    ("value", "<", "n", True),
    ("value", "<", "m", False),
    ("value", ">", "l", True),
    ("value", ">", "m", False),
    ("version", "==", 2, True),
    ("version", "==", 1, False),
    ("version", "!=", 1, True),
    ("version", "!=", 2, False),
    ("version", "<", 3, True),
    ("version", "<", 2, False),
    ("version", ">", 1, True),
    ("version", ">", 2, False),
    ("create_revision", "==", 2, True),
    ("create_revision", "==", 4, False),
    ("create_revision", "!=", 4, True),
    ("create_revision", "!=", 2, False),
    ("create_revision", "<", 3, True),
    ("create_revision", "<", 2, False),
    ("create_revision", ">", 1, True),
    ("create_revision", ">", 2, False),
    ("mod_revision", "==", 4, True),
    ("mod_revision", "==", 2, False),
    ("mod_revision", "!=", 2, True),
    ("mod_revision", "!=", 4, False),
    ("mod_revision", "<", 5, True),
    ("mod_revision", "<", 4, False),
    ("mod_revision", ">", 3, True),
    ("mod_revision", ">", 4, False),
]


@pytest.mark.parametrize("target,op,value,expected", CASES)
def test_compare_takes_the_right_branch(log, target, op, value, expected):
    body = txn(
        log,
        [{"key": "k", "target": target, "op": op, "value": value}],
        success=[{"put": {"key": "won", "value": "success"}}],
        failure=[{"put": {"key": "won", "value": "failure"}}],
    )
    assert body["succeeded"] is expected
    assert body["revision"] == 5
    assert log.store.get("won")["value"] == ("success" if expected else "failure")


@pytest.mark.parametrize(
    "target,op,value,expected",
    [
        # As etcd: a value compare against an absent key always fails ...
        ("value", "==", "", False),
        ("value", "!=", "x", False),
        # ... while the revision targets compare against 0.
        ("version", "==", 0, True),
        ("create_revision", "==", 0, True),
        ("mod_revision", "<", 1, True),
        ("version", ">", 0, False),
    ],
)
def test_compare_against_an_absent_key(log, target, op, value, expected):
    body = txn(log, [{"key": "absent", "target": target, "op": op, "value": value}])
    assert body["succeeded"] is expected


def test_compares_are_all_required(log):
    both = [
        {"key": "k", "target": "value", "op": "==", "value": "m"},
        {"key": "other", "target": "version", "op": "==", "value": 5},
    ]
    assert txn(log, both)["succeeded"] is False
    assert txn(log, both[:1])["succeeded"] is True
    assert txn(log, [])["succeeded"] is True


def test_responses_mirror_the_ops_of_the_branch_taken(log):
    body = txn(
        log,
        [{"key": "k", "target": "value", "op": "==", "value": "m"}],
        success=[
            {"get": {"key": "k"}},
            {"put": {"key": "k", "value": "z"}},
            {"get": {"key": "k"}},
            {"delete": {"key": "other"}},
            {"get": {"key": "missing"}},
            {"put": {"key": "new", "value": "1"}},
        ],
        failure=[{"get": {"key": "k"}}],
    )
    # One write, one revision: 5 for every op of the txn.
    assert body == {
        "succeeded": True,
        "responses": [
            {"get": {"kv": kv("k", "m", 2, 4, 2), "revision": 5}},
            {"put": {"revision": 5, "prev_kv": kv("k", "m", 2, 4, 2)}},
            {"get": {"kv": kv("k", "z", 2, 5, 3), "revision": 5}},
            {"delete": {"deleted": 1, "revision": 5}},
            {"get": {"kv": None, "revision": 5}},
            {"put": {"revision": 5, "prev_kv": None}},
        ],
        "revision": 5,
    }
    assert log.store.current_revision == 5
    events = log.store.events_since(5)
    assert [(rev, e["type"], e["kv"]["key"]) for rev, e in events] == [
        (5, "put", "k"),
        (5, "delete", "other"),
        (5, "put", "new"),
    ]


def test_failure_branch_runs_when_a_compare_fails(log):
    body = txn(
        log,
        [{"key": "k", "target": "version", "op": ">", "value": 10}],
        success=[{"put": {"key": "s", "value": "1"}}],
        failure=[{"delete": {"key": "k"}}, {"get": {"key": "k"}}],
    )
    assert body == {
        "succeeded": False,
        "responses": [{"delete": {"deleted": 1, "revision": 5}}, {"get": {"kv": None, "revision": 5}}],
        "revision": 5,
    }
    assert log.store.get("s") is None


def test_a_txn_that_changes_nothing_keeps_the_revision(log):
    body = txn(log, [], success=[{"get": {"key": "k"}}, {"delete": {"key": "absent"}}])
    assert body["revision"] == 4
    assert body["responses"][1] == {"delete": {"deleted": 0, "revision": 4}}
    assert log.store.current_revision == 4
    assert txn(log, [])["responses"] == []


def test_txn_delete_with_prefix(log):
    log.put("dir/a", "1")
    log.put("dir/b", "1")
    body = txn(log, [], success=[{"delete": {"key": "dir/", "prefix": True}}])
    assert body["responses"] == [{"delete": {"deleted": 2, "revision": 7}}]


def test_an_unknown_lease_fails_the_whole_txn_before_any_write(log):
    with raises_kv(404, "lease_not_found"):
        txn(log, [], success=[{"put": {"key": "first", "value": "1"}}, {"put": {"key": "x", "value": "1", "lease": 9}}])
    assert log.store.get("first") is None
    assert log.store.current_revision == 4


def test_compare_and_swap(log):
    cas = [{"key": "k", "target": "value", "op": "==", "value": "m"}]
    assert txn(log, cas, success=[{"put": {"key": "k", "value": "n"}}])["succeeded"] is True
    assert txn(log, cas, success=[{"put": {"key": "k", "value": "o"}}])["succeeded"] is False
    assert log.store.get("k")["value"] == "n"


def test_a_read_only_txn_is_served_by_read(log):
    body = log.store.read(
        {"op": "txn", "compare": [{"key": "k", "target": "version", "op": "==", "value": 2}], "success": [{"get": {"key": "k"}}]}
    )
    assert body == {"succeeded": True, "responses": [{"get": {"kv": kv("k", "m", 2, 4, 2), "revision": 4}}], "revision": 4}
    with pytest.raises(ValueError, match="txn changes state"):
        log.store.read({"op": "txn", "failure": [{"delete": {"key": "k"}}]})
