"""Validation and normalization of requests and commands.

`validate_request` checks one client request as it arrives (a session frame's item, or
what the HTTP layer builds from a call) and returns it in normal form: every field of
its op present, defaults filled in, nothing else.  `validate_command` does the same for
what `KVStore.apply` accepts: the client requests plus the command only the node itself
proposes (`lease_expire`).

Normal forms (request_id is kept when given; the session's correlation "id" is dropped):

    {"op": "put", "key", "value", "lease"}                 lease 0: no lease
    {"op": "get", "key", "revision", "serializable"}       revision 0: the latest
    {"op": "delete", "key", "prefix"}
    {"op": "range", "prefix", "limit", "revision", "serializable"}   limit 0: no limit
    {"op": "txn", "compare": [{"key", "target", "op", "value"}],
                  "success": [OP], "failure": [OP]}
        OP = {"put": {"key", "value", "lease"}} | {"get": {"key"}} | {"delete": {"key", "prefix"}}
    {"op": "lease_grant", "ttl"}
    {"op": "lease_revoke" | "lease_keepalive" | "lease_expire", "lease"}
    {"op": "compact", "revision"}
    auth commands (auth.py), through validate_admin and validate_command

A write checked against a user's permissions also carries "auth_user" and
"auth_revision" (node/auth.py); only validate_command accepts them, so a client cannot
claim a user.  A field given as null counts as absent.  Unknown fields are refused, so that a typo
("vaule") is an error rather than a silently empty write.
"""
from __future__ import annotations

from .auth import AUTH_OPS, validate_auth_command
from .errors import MAX_KEY_BYTES, MAX_VALUE_BYTES, KVError, bad_request, too_large

MAX_INT = 2**63 - 1  # etcd's revisions, lease ids and TTLs are int64
MAX_TXN_OPS = 128  # per compare list and per branch, as etcd's default --max-txn-ops
MAX_CLIENT_ID_CHARS = 256

COMPARE_TARGETS = ("value", "version", "mod_revision", "create_revision")
COMPARE_OPS = ("==", "!=", "<", ">")

CLIENT_OPS = ("put", "get", "delete", "range", "txn", "lease_grant", "lease_revoke", "lease_keepalive", "compact")
INTERNAL_OPS = ("lease_expire",)
# Ops that change state and so go through the log.  A txn is a write when either
# branch holds a put or a delete (see is_write).
WRITE_OPS = frozenset(("put", "delete", "lease_grant", "lease_revoke", "lease_expire", "compact") + AUTH_OPS)

# Fields every request may carry besides its op's own.
_ENVELOPE = frozenset(("op", "id", "request_id"))
_CLIENT_OP_SET = frozenset(CLIENT_OPS)
_ADMIN_OP_SET = frozenset(CLIENT_OPS + AUTH_OPS)
_ANY_OP_SET = frozenset(CLIENT_OPS + INTERNAL_OPS + AUTH_OPS)
_AUTH_FIELDS = ("auth_user", "auth_revision")


def validate_request(request: object) -> dict:
    """Check one client request and return its normal form; raise KVError 400/413."""
    return _validate(request, CLIENT_OPS, _CLIENT_OP_SET)


def validate_admin(request: object) -> dict:
    """Like validate_request, also accepting the auth commands (users, roles, auth
    enable/disable: the node's auth API builds them, with passwords hashed)."""
    return _validate(request, CLIENT_OPS + AUTH_OPS, _ADMIN_OP_SET)


def validate_command(command: object) -> dict:
    """Like validate_admin, also accepting the node's own commands and the user a write
    was checked for (for apply)."""
    if type(command) is dict and ("auth_user" in command or "auth_revision" in command):
        user, revision = command.get("auth_user"), command.get("auth_revision")
        if type(user) is not str or type(revision) is not int:
            raise bad_request("auth_user must be a string and auth_revision an integer")
        normal = _validate({k: v for k, v in command.items() if k not in _AUTH_FIELDS}, CLIENT_OPS + INTERNAL_OPS + AUTH_OPS, _ANY_OP_SET)
        normal["auth_user"], normal["auth_revision"] = user, revision
        return normal
    return _validate(command, CLIENT_OPS + INTERNAL_OPS + AUTH_OPS, _ANY_OP_SET)


def is_write(op: dict) -> bool:
    """True when the (normalized) op changes state and must be applied through the log."""
    kind = op["op"]
    if kind == "txn":
        return any("get" not in o for o in op["success"]) or any("get" not in o for o in op["failure"])
    return kind in WRITE_OPS


def parse_request_id(request_id: object) -> tuple[str, int]:
    """Split "client:seq" into (client, seq); the client part may itself contain ':'."""
    if type(request_id) is not str:
        raise bad_request(f"request_id must be a string 'client:seq', got {_json_type(request_id)}")
    client, sep, seq = request_id.rpartition(":")
    if not sep or not client or not seq or not (seq.isascii() and seq.isdigit()):
        raise bad_request(
            f"request_id must look like 'client:seq' with seq a positive integer, got {request_id!r}"
        )
    if len(client) > MAX_CLIENT_ID_CHARS:
        raise bad_request(
            f"request_id's client part is {len(client)} characters; the limit is {MAX_CLIENT_ID_CHARS}"
        )
    number = int(seq)
    if not 1 <= number <= MAX_INT:
        raise bad_request(f"request_id's seq must be between 1 and {MAX_INT}, got {seq}")
    return client, number


# --------------------------------------------------------------------------- dispatch


def _validate(request: object, allowed_ops: tuple[str, ...], op_set: frozenset) -> dict:
    if type(request) is not dict:
        raise bad_request(f"a request must be a JSON object, got {_json_type(request)}")
    kind = request.get("op")
    if kind is None:
        raise bad_request(f"missing field 'op'; expected one of {', '.join(allowed_ops)}")
    if type(kind) is not str or kind not in op_set:
        shown = repr(kind) if type(kind) is str else _json_type(kind)
        raise bad_request(f"unknown op {shown}; expected one of {', '.join(allowed_ops)}")
    check = _BY_OP.get(kind)
    normal = check(request) if check is not None else validate_auth_command(request)
    request_id = request.get("request_id")
    if request_id is not None:
        client, seq = parse_request_id(request_id)
        normal["request_id"] = f"{client}:{seq}"
    return normal


def _put(r: dict) -> dict:
    key, value = r.get("key"), r.get("value")
    # The usual put (ASCII text within the limits, no lease), checked in one
    # expression: half the interpreter steps of the checks below, which anything
    # else takes and which say what is wrong.  ASCII text is as long in UTF-8.
    if (
        type(key) is str
        and type(value) is str
        and 0 < len(key) <= MAX_KEY_BYTES
        and len(value) <= MAX_VALUE_BYTES
        and key.isascii()
        and value.isascii()
        and r.get("lease") is None
        and r.keys() <= _PUT.allowed
    ):
        return {"op": "put", "key": key, "value": value, "lease": 0}
    _check_fields(r, "put", _PUT)
    return {
        "op": "put",
        "key": _key(r["key"], "key"),
        "value": _value(r["value"], "value"),
        "lease": _int(r.get("lease"), "lease", 0, 0),
    }


def _get(r: dict) -> dict:
    _check_fields(r, "get", _GET)
    return {
        "op": "get",
        "key": _key(r["key"], "key"),
        "revision": _int(r.get("revision"), "revision", 0, 0),
        "serializable": _bool(r.get("serializable"), "serializable"),
    }


def _delete(r: dict) -> dict:
    _check_fields(r, "delete", _DELETE)
    return {"op": "delete", "key": _key(r["key"], "key"), "prefix": _bool(r.get("prefix"), "prefix")}


def _range(r: dict) -> dict:
    _check_fields(r, "range", _RANGE)
    return {
        "op": "range",
        # An empty prefix is every key, as GET /v1/kv?prefix= is.
        "prefix": _key(r["prefix"], "prefix", allow_empty=True),
        "limit": _int(r.get("limit"), "limit", 0, 0),
        "revision": _int(r.get("revision"), "revision", 0, 0),
        "serializable": _bool(r.get("serializable"), "serializable"),
    }


def _lease_grant(r: dict) -> dict:
    _check_fields(r, "lease_grant", _LEASE_GRANT)
    return {"op": "lease_grant", "ttl": _int(r["ttl"], "ttl", 1)}


def _lease_op(kind: str):
    def check(r: dict) -> dict:
        _check_fields(r, kind, _LEASE)
        return {"op": kind, "lease": _int(r["lease"], "lease", 1)}

    return check


def _compact(r: dict) -> dict:
    _check_fields(r, "compact", _COMPACT)
    return {"op": "compact", "revision": _int(r["revision"], "revision", 1)}


# --------------------------------------------------------------------------- txn


def _txn(r: dict) -> dict:
    _check_fields(r, "txn", _TXN)
    compare = [_compare(c, f"compare[{i}]") for i, c in enumerate(_list(r.get("compare"), "compare"))]
    return {
        "op": "txn",
        "compare": compare,
        "success": _branch(r.get("success"), "success"),
        "failure": _branch(r.get("failure"), "failure"),
    }


def _compare(c: object, where: str) -> dict:
    if type(c) is not dict:
        raise bad_request(f"{where} must be an object, got {_json_type(c)}")
    _check_fields(c, where, _COMPARE)
    target = c["target"]
    if target not in COMPARE_TARGETS or type(target) is not str:
        raise bad_request(
            f"{where}.target must be one of {', '.join(COMPARE_TARGETS)}; got {_show(target)}"
        )
    op = c["op"]
    if op not in COMPARE_OPS or type(op) is not str:
        raise bad_request(f"{where}.op must be one of {', '.join(COMPARE_OPS)}; got {_show(op)}")
    if target == "value":
        value = _value(c["value"], f"{where}.value")
    else:
        value = _int(c["value"], f"{where}.value", 0)
    return {"key": _key(c["key"], f"{where}.key"), "target": target, "op": op, "value": value}


def _branch(ops: object, name: str) -> list:
    normal = [_txn_op(o, f"{name}[{i}]") for i, o in enumerate(_list(ops, name))]
    _check_no_overlapping_writes(normal, name)
    return normal


def _txn_op(o: object, where: str) -> dict:
    if type(o) is not dict or len(o) != 1 or next(iter(o)) not in ("put", "get", "delete"):
        if type(o) is dict:
            got = f"an object with keys {', '.join(map(repr, o))}" if o else "an empty object"
        else:
            got = _json_type(o)
        raise bad_request(f"{where} must be an object with exactly one of put, get, delete; got {got}")
    kind, body = next(iter(o.items()))
    where = f"{where}.{kind}"
    if type(body) is not dict:
        raise bad_request(f"{where} must be an object, got {_json_type(body)}")
    if kind == "put":
        _check_fields(body, where, _TXN_PUT)
        return {
            "put": {
                "key": _key(body["key"], f"{where}.key"),
                "value": _value(body["value"], f"{where}.value"),
                "lease": _int(body.get("lease"), f"{where}.lease", 0, 0),
            }
        }
    if kind == "get":
        _check_fields(body, where, _TXN_GET)
        return {"get": {"key": _key(body["key"], f"{where}.key")}}
    _check_fields(body, where, _TXN_DELETE)
    return {"delete": {"key": _key(body["key"], f"{where}.key"), "prefix": _bool(body.get("prefix"), f"{where}.prefix")}}


def _check_no_overlapping_writes(ops: list, name: str) -> None:
    # As etcd: one txn branch may write a key at most once, since all its writes share
    # one revision and a key has at most one version per revision.
    exact: dict[str, int] = {}
    prefixes: list[tuple[str, int]] = []
    for i, o in enumerate(ops):
        if "get" in o:
            continue
        body = o.get("put") or o["delete"]
        key = body["key"]
        if body.get("prefix"):
            prefixes.append((key, i))
        elif key in exact:
            raise bad_request(f"{name}[{exact[key]}] and {name}[{i}] both write key {key!r}; a txn branch may write a key once")
        else:
            exact[key] = i
    for p, i in prefixes:
        for key, j in exact.items():
            if key.startswith(p):
                raise bad_request(f"{name}[{i}] deletes prefix {p!r}, which overlaps {name}[{j}]'s key {key!r}")
        for q, j in prefixes:
            if j != i and q.startswith(p):
                raise bad_request(f"{name}[{i}] deletes prefix {p!r}, which overlaps {name}[{j}]'s prefix {q!r}")


# --------------------------------------------------------------------------- fields

_BY_OP = {
    "put": _put,
    "get": _get,
    "delete": _delete,
    "range": _range,
    "txn": _txn,
    "lease_grant": _lease_grant,
    "lease_revoke": _lease_op("lease_revoke"),
    "lease_keepalive": _lease_op("lease_keepalive"),
    "lease_expire": _lease_op("lease_expire"),
    "compact": _compact,
}


class _Fields:
    """The fields one object may have: `required` ones and the others `allowed`."""

    __slots__ = ("required", "allowed", "envelope")

    def __init__(self, required: tuple, optional: tuple, *, envelope: bool = True) -> None:
        self.required = required
        self.envelope = envelope
        self.allowed = (_ENVELOPE if envelope else frozenset()).union(required, optional)


_PUT = _Fields(("key", "value"), ("lease",))
_GET = _Fields(("key",), ("revision", "serializable"))
_DELETE = _Fields(("key",), ("prefix",))
_RANGE = _Fields(("prefix",), ("limit", "revision", "serializable"))
_LEASE_GRANT = _Fields(("ttl",), ())
_LEASE = _Fields(("lease",), ())
_COMPACT = _Fields(("revision",), ())
_TXN = _Fields((), ("compare", "success", "failure"))
_COMPARE = _Fields(("key", "target", "op", "value"), (), envelope=False)
_TXN_PUT = _Fields(("key", "value"), ("lease",), envelope=False)
_TXN_GET = _Fields(("key",), (), envelope=False)
_TXN_DELETE = _Fields(("key",), ("prefix",), envelope=False)


def _check_fields(obj: dict, where: str, fields: _Fields) -> None:
    if obj.keys() <= fields.allowed:  # the common case, one C-level set comparison
        for name in fields.required:
            if obj.get(name) is None:
                break
        else:
            return
    if fields.envelope:
        where = f"{where} request"
    for name in fields.required:
        if obj.get(name) is None:
            raise bad_request(f"missing field {name!r} in {where}")
    name = min(obj.keys() - fields.allowed, key=str)
    expected = ", ".join(sorted(fields.allowed - _ENVELOPE if fields.envelope else fields.allowed))
    raise bad_request(f"unknown field {_show(name)} in {where}; expected {expected}")


def _key(value: object, name: str, *, allow_empty: bool = False) -> str:
    if type(value) is not str:
        raise bad_request(f"{name} must be a string, got {_json_type(value)}")
    if not value and not allow_empty:
        raise bad_request(f"{name} must be a non-empty string")
    size = _utf8_len(value, name)
    if size > MAX_KEY_BYTES:
        raise too_large(f"{name} is {size} bytes; the limit is {MAX_KEY_BYTES}")
    return value


def _value(value: object, name: str) -> str:
    if type(value) is not str:
        raise bad_request(f"{name} must be a string, got {_json_type(value)}")
    size = _utf8_len(value, name)
    if size > MAX_VALUE_BYTES:
        raise too_large(f"{name} is {size} bytes; the limit is {MAX_VALUE_BYTES}")
    return value


def _utf8_len(text: str, name: str) -> int:
    if text.isascii():  # the common case, without building the bytes
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise bad_request(f"{name} is not valid Unicode text (it contains a lone surrogate)") from None


def _int(value: object, name: str, minimum: int, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    # type() rather than isinstance(): JSON true is not the number 1.
    if type(value) is not int:
        raise bad_request(f"{name} must be an integer, got {_json_type(value)}")
    if value < minimum:
        raise bad_request(f"{name} must be at least {minimum}, got {value}")
    if value > MAX_INT:
        raise bad_request(f"{name} must be at most {MAX_INT}, got {value}")
    return value


def _bool(value: object, name: str) -> bool:
    if value is None:
        return False
    if type(value) is not bool:
        raise bad_request(f"{name} must be a boolean (true or false), got {_json_type(value)}")
    return value


def _list(value: object, name: str) -> list:
    if value is None:
        return []
    if type(value) is not list:
        raise bad_request(f"{name} must be an array, got {_json_type(value)}")
    if len(value) > MAX_TXN_OPS:
        raise bad_request(f"{name} has {len(value)} items; the limit is {MAX_TXN_OPS}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) in (int, float):
        return "number"
    if type(value) is str:
        return "string"
    if type(value) in (list, tuple):
        return "array"
    if type(value) is dict:
        return "object"
    return type(value).__name__


def _show(value: object) -> str:
    """A short rendering of a bad value for an error message."""
    text = repr(value) if type(value) in (str, int, bool) or value is None else _json_type(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = [
    "validate_request",
    "validate_command",
    "validate_admin",
    "is_write",
    "parse_request_id",
    "KVError",
    "MAX_INT",
    "MAX_TXN_OPS",
    "COMPARE_TARGETS",
    "COMPARE_OPS",
]
