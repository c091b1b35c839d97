"""Request validation: normal forms, and a precise error for every kind of bad input."""
from __future__ import annotations

import pytest
from kvtest_helpers import raises_kv

from abcd.kv import is_write, parse_request_id, validate_command, validate_request
from abcd.kv.validate import MAX_INT

# --------------------------------------------------------------------------- normal forms


def test_normal_forms_fill_defaults_and_drop_the_correlation_id():
    assert validate_request({"id": 1, "op": "put", "key": "a", "value": "x"}) == {
        "op": "put",
        "key": "a",
        "value": "x",
        "lease": 0,
    }
    assert validate_request({"op": "get", "key": "a"}) == {"op": "get", "key": "a", "revision": 0, "serializable": False}
    assert validate_request({"op": "delete", "key": "a", "prefix": True}) == {"op": "delete", "key": "a", "prefix": True}
    assert validate_request({"op": "range", "prefix": "", "limit": 5}) == {
        "op": "range",
        "prefix": "",
        "limit": 5,
        "revision": 0,
        "serializable": False,
    }
    assert validate_request({"op": "txn"}) == {"op": "txn", "compare": [], "success": [], "failure": []}
    assert validate_request({"op": "lease_grant", "ttl": 5}) == {"op": "lease_grant", "ttl": 5}
    assert validate_request({"op": "lease_revoke", "lease": 3}) == {"op": "lease_revoke", "lease": 3}
    assert validate_request({"op": "lease_keepalive", "lease": 3}) == {"op": "lease_keepalive", "lease": 3}


def test_null_counts_as_absent_for_optional_fields():
    assert validate_request({"op": "put", "key": "a", "value": "", "lease": None})["lease"] == 0
    assert validate_request({"op": "get", "key": "a", "revision": None, "serializable": None})["revision"] == 0


def test_request_id_is_kept_in_normal_form():
    assert validate_request({"op": "put", "key": "a", "value": "x", "request_id": "c7:041"})["request_id"] == "c7:41"


def test_txn_normal_form():
    got = validate_request(
        {
            "op": "txn",
            "compare": [{"key": "a", "target": "value", "op": "==", "value": "x"}],
            "success": [{"put": {"key": "a", "value": "y"}}, {"get": {"key": "a"}}],
            "failure": [{"delete": {"key": "a"}}],
        }
    )
    assert got == {
        "op": "txn",
        "compare": [{"key": "a", "target": "value", "op": "==", "value": "x"}],
        "success": [{"put": {"key": "a", "value": "y", "lease": 0}}, {"get": {"key": "a"}}],
        "failure": [{"delete": {"key": "a", "prefix": False}}],
    }


def test_is_write():
    def op(**fields):
        return validate_command(fields)

    assert is_write(op(op="put", key="a", value="x"))
    assert is_write(op(op="delete", key="a"))
    assert is_write(op(op="lease_grant", ttl=1))
    assert is_write(op(op="lease_revoke", lease=1))
    assert is_write(op(op="lease_expire", lease=1))
    assert is_write(op(op="compact", revision=1))
    assert not is_write(op(op="get", key="a"))
    assert not is_write(op(op="range", prefix="a"))
    assert not is_write(op(op="lease_keepalive", lease=1))
    assert not is_write(op(op="txn", success=[{"get": {"key": "a"}}], failure=[{"get": {"key": "b"}}]))
    assert is_write(op(op="txn", failure=[{"delete": {"key": "a"}}]))
    assert is_write(op(op="txn", success=[{"get": {"key": "a"}}, {"put": {"key": "a", "value": ""}}]))


def test_internal_commands_are_for_apply_only():
    with raises_kv(400, "bad_request"):
        validate_request({"op": "lease_expire", "lease": 1})
    assert validate_command({"op": "lease_expire", "lease": 1}) == {"op": "lease_expire", "lease": 1}


def test_compact_is_a_client_write_that_names_a_positive_revision():
    assert validate_request({"op": "compact", "revision": 2}) == {"op": "compact", "revision": 2}
    assert is_write({"op": "compact", "revision": 2})
    with raises_kv(400, "bad_request"):
        validate_request({"op": "compact", "revision": 0})
    with raises_kv(400, "bad_request"):
        validate_request({"op": "compact"})
    with raises_kv(400, "bad_request"):
        validate_request({"op": "compact", "revision": 3, "physical": True})


# --------------------------------------------------------------------------- sizes


def test_key_limit_is_1_kib_of_utf8():
    assert validate_request({"op": "get", "key": "k" * 1024})["key"] == "k" * 1024
    with raises_kv(413, "too_large", "key is 1025 bytes; the limit is 1024"):
        validate_request({"op": "get", "key": "k" * 1025})
    # 513 characters, but 1026 bytes.
    with raises_kv(413, "too_large", "key is 1026 bytes; the limit is 1024"):
        validate_request({"op": "put", "key": "é" * 513, "value": ""})
    with raises_kv(413, "too_large", "prefix is 2000 bytes; the limit is 1024"):
        validate_request({"op": "range", "prefix": "p" * 2000})


def test_value_limit_is_1_mib_of_utf8():
    assert validate_request({"op": "put", "key": "a", "value": "v" * 1048576})
    with raises_kv(413, "too_large", "value is 1048577 bytes; the limit is 1048576"):
        validate_request({"op": "put", "key": "a", "value": "v" * 1048577})
    with raises_kv(413, "too_large", "value is 1048578 bytes; the limit is 1048576"):
        validate_request({"op": "put", "key": "a", "value": "€" * 349526})
    with raises_kv(413, "too_large", "success[0].put.value is 1048577 bytes; the limit is 1048576"):
        validate_request({"op": "txn", "success": [{"put": {"key": "a", "value": "v" * 1048577}}]})


# --------------------------------------------------------------------------- bad requests

BAD = [
    ([1, 2], "a request must be a JSON object, got array"),
    ("put", "a request must be a JSON object, got string"),
    ({"key": "a"}, "missing field 'op'; expected one of put, get, delete, range, txn, lease_grant, lease_revoke, lease_keepalive, compact"),
    ({"op": "fly"}, "unknown op 'fly'; expected one of put, get, delete, range, txn, lease_grant, lease_revoke, lease_keepalive, compact"),
    ({"op": 3}, "unknown op number; expected one of put, get, delete, range, txn, lease_grant, lease_revoke, lease_keepalive, compact"),
    ({"op": "put", "value": "x"}, "missing field 'key' in put request"),
    ({"op": "put", "key": "a"}, "missing field 'value' in put request"),
    ({"op": "put", "key": "a", "value": None}, "missing field 'value' in put request"),
    ({"op": "put", "key": "a", "vaule": "x", "value": "x"}, "unknown field 'vaule' in put request; expected key, lease, value"),
    ({"op": "put", "key": "", "value": "x"}, "key must be a non-empty string"),
    ({"op": "put", "key": 5, "value": "x"}, "key must be a string, got number"),
    ({"op": "put", "key": ["a"], "value": "x"}, "key must be a string, got array"),
    ({"op": "put", "key": "a", "value": 5}, "value must be a string, got number"),
    ({"op": "put", "key": "a", "value": {"v": 1}}, "value must be a string, got object"),
    ({"op": "put", "key": "a", "value": "x", "lease": True}, "lease must be an integer, got boolean"),
    ({"op": "put", "key": "a", "value": "x", "lease": -1}, "lease must be at least 0, got -1"),
    ({"op": "put", "key": "a", "value": "x", "lease": 1.0}, "lease must be an integer, got number"),
    ({"op": "put", "key": "a", "value": "x", "lease": MAX_INT + 1}, f"lease must be at most {MAX_INT}, got {MAX_INT + 1}"),
    ({"op": "put", "key": "\ud800", "value": "x"}, "key is not valid Unicode text (it contains a lone surrogate)"),
    ({"op": "put", "key": "a", "value": "x\udfff"}, "value is not valid Unicode text (it contains a lone surrogate)"),
    ({"op": "get", "key": "a", "serializable": 1}, "serializable must be a boolean (true or false), got number"),
    ({"op": "get", "key": "a", "serializable": "true"}, "serializable must be a boolean (true or false), got string"),
    ({"op": "get", "key": "a", "revision": -2}, "revision must be at least 0, got -2"),
    ({"op": "get", "key": "a", "revision": "7"}, "revision must be an integer, got string"),
    ({"op": "delete", "key": "a", "prefix": 0}, "prefix must be a boolean (true or false), got number"),
    ({"op": "delete", "key": ""}, "key must be a non-empty string"),
    ({"op": "range"}, "missing field 'prefix' in range request"),
    ({"op": "range", "prefix": "a", "limit": -1}, "limit must be at least 0, got -1"),
    ({"op": "range", "prefix": "a", "limit": False}, "limit must be an integer, got boolean"),
    ({"op": "lease_grant"}, "missing field 'ttl' in lease_grant request"),
    ({"op": "lease_grant", "ttl": 0}, "ttl must be at least 1, got 0"),
    ({"op": "lease_grant", "ttl": "10"}, "ttl must be an integer, got string"),
    ({"op": "lease_revoke", "lease": 0}, "lease must be at least 1, got 0"),
    ({"op": "lease_keepalive"}, "missing field 'lease' in lease_keepalive request"),
    ({"op": "get", "key": "a", "request_id": 7}, "request_id must be a string 'client:seq', got number"),
    ({"op": "put", "key": "a", "value": "", "request_id": "c7"}, "request_id must look like 'client:seq' with seq a positive integer, got 'c7'"),
    ({"op": "put", "key": "a", "value": "", "request_id": ":4"}, "request_id must look like 'client:seq' with seq a positive integer, got ':4'"),
    ({"op": "put", "key": "a", "value": "", "request_id": "c:-4"}, "request_id must look like 'client:seq' with seq a positive integer, got 'c:-4'"),
    ({"op": "put", "key": "a", "value": "", "request_id": "c:٣"}, "request_id must look like 'client:seq' with seq a positive integer, got 'c:٣'"),
    ({"op": "put", "key": "a", "value": "", "request_id": "c:0"}, f"request_id's seq must be between 1 and {MAX_INT}, got 0"),
    ({"op": "put", "key": "a", "value": "", "request_id": "x" * 300 + ":1"}, "request_id's client part is 300 characters; the limit is 256"),
]


@pytest.mark.parametrize("request_,message", BAD, ids=[m[:50] for _, m in BAD])
def test_bad_requests_get_400_with_a_precise_message(request_, message):
    with raises_kv(400, "bad_request", message):
        validate_request(request_)


TXN_BAD = [
    ({"compare": {"key": "a"}}, "compare must be an array, got object"),
    ({"compare": ["a"]}, "compare[0] must be an object, got string"),
    ({"compare": [{"key": "a", "target": "value", "op": "=="}]}, "missing field 'value' in compare[0]"),
    (
        {"compare": [{"key": "a", "target": "lease", "op": "==", "value": 1}]},
        "compare[0].target must be one of value, version, mod_revision, create_revision; got 'lease'",
    ),
    ({"compare": [{"key": "a", "target": "value", "op": ">=", "value": "x"}]}, "compare[0].op must be one of ==, !=, <, >; got '>='"),
    ({"compare": [{"key": "a", "target": "version", "op": "==", "value": "1"}]}, "compare[0].value must be an integer, got string"),
    ({"compare": [{"key": "a", "target": "version", "op": "==", "value": True}]}, "compare[0].value must be an integer, got boolean"),
    ({"compare": [{"key": "a", "target": "value", "op": "==", "value": 1}]}, "compare[0].value must be a string, got number"),
    ({"compare": [{"key": "", "target": "value", "op": "==", "value": "x"}]}, "compare[0].key must be a non-empty string"),
    (
        {"compare": [{"key": "a", "target": "value", "op": "==", "value": "x", "extra": 1}]},
        "unknown field 'extra' in compare[0]; expected key, op, target, value",
    ),
    ({"success": "put"}, "success must be an array, got string"),
    ({"success": [{"put": {"key": "a", "value": "x"}, "get": {"key": "a"}}]}, "success[0] must be an object with exactly one of put, get, delete; got an object with keys 'put', 'get'"),
    ({"success": [{}]}, "success[0] must be an object with exactly one of put, get, delete; got an empty object"),
    ({"failure": [{"range": {"key": "a"}}]}, "failure[0] must be an object with exactly one of put, get, delete; got an object with keys 'range'"),
    ({"failure": [{"put": "a"}]}, "failure[0].put must be an object, got string"),
    ({"success": [{"put": {"key": "a"}}]}, "missing field 'value' in success[0].put"),
    ({"success": [{"get": {"key": "a", "revision": 3}}]}, "unknown field 'revision' in success[0].get; expected key"),
    ({"success": [{"delete": {"key": "a", "prefix": "yes"}}]}, "success[0].delete.prefix must be a boolean (true or false), got string"),
    (
        {"success": [{"put": {"key": "a", "value": "1"}}, {"get": {"key": "a"}}, {"delete": {"key": "a"}}]},
        "success[0] and success[2] both write key 'a'; a txn branch may write a key once",
    ),
    (
        {"failure": [{"delete": {"key": "d/", "prefix": True}}, {"put": {"key": "d/x", "value": "1"}}]},
        "failure[0] deletes prefix 'd/', which overlaps failure[1]'s key 'd/x'",
    ),
    (
        {"failure": [{"delete": {"key": "d/", "prefix": True}}, {"delete": {"key": "d", "prefix": True}}]},
        "failure[1] deletes prefix 'd', which overlaps failure[0]'s prefix 'd/'",
    ),
    ({"success": [{"get": {"key": "a"}}] * 129}, "success has 129 items; the limit is 128"),
    ({"compares": []}, "unknown field 'compares' in txn request; expected compare, failure, success"),
]


@pytest.mark.parametrize("fields,message", TXN_BAD, ids=[m[:50] for _, m in TXN_BAD])
def test_bad_txns_get_400_with_a_precise_message(fields, message):
    with raises_kv(400, "bad_request", message):
        validate_request({"op": "txn", **fields})


def test_the_same_key_may_be_written_once_in_each_branch():
    validate_request(
        {"op": "txn", "success": [{"put": {"key": "a", "value": "1"}}], "failure": [{"put": {"key": "a", "value": "2"}}]}
    )


def test_parse_request_id():
    assert parse_request_id("c7:41") == ("c7", 41)
    assert parse_request_id("10.0.0.1:9000:3") == ("10.0.0.1:9000", 3)
