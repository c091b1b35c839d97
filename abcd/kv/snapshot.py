"""Snapshot encoding of a KVStore.

A snapshot is written in the packed format, version 3 (snapshot_packed.py): a prefix,
a JSON meta, and the version lists as columns, made for loading a million keys in one
pass.  Versions 1 and 2, one JSON document each, are still read (a node upgraded from
an older abcd starts from the snapshot it wrote then), and version 2 can still be
written (`encode_json`), for people and tests that read a snapshot as JSON:

    {"format": "abcd-kv", "version": 2,
     "applied_index", "revision", "compact_revision",
     "last_lease_id", "leases": [[id, ttl], ...],
     "versions": [[key, [[value, create_revision, mod_revision, version, lease], ...]], ...],
                                              each key's versions, by key, oldest first
     "events": [[revision, [event, ...]], ...],
     "sessions": [[client, floor, [[seq, body, error], ...]], ...],
     "auth": {"enabled", "revision", "secret", "users": [[name, user]], "roles": [[name, perms]]}}
                                              users, roles, permissions (auth.py); a
                                              snapshot without it has none

An event is [key, i, j]: its KV is version i of the key, its previous KV version j (-1
when the key did not exist before), both in `versions` above, and its type follows
from its KV (a tombstone, version 0, is a delete).  An event whose KV the version
lists no longer hold (trimmed at the compaction point) is written in full, {"type",
"kv", "prev_kv"} with KVs as the API returns them.  Each KV is written once, which
makes a snapshot about a third of the size of version 1 (where events and versions
held the KVs in full, with their field names).  Version 3 keeps everything but the
version lists as version 2 writes it.

Everything a restored store needs to answer exactly as the original would: reads at
any revision from the compaction point, watches from there, retried requests.  The
live table and each lease's keys are derived from the versions on restore.  Keys are
written in order, so two stores in the same state give the same bytes.

The store captures and restores itself (`KVStore.capture`, `KVStore.from_capture`);
this module turns a capture into bytes and bytes into a state to restore.
"""
from __future__ import annotations

import json

from . import snapshot_packed
from .errors import SnapshotError
from .mvcc_capture import CapturedEvents, CapturedVersions

FORMAT = "abcd-kv"
VERSION = snapshot_packed.VERSION_PACKED
JSON_VERSION = 2
READABLE_VERSIONS = (1, 2, 3)


def encode(state: dict) -> bytes:
    """Serialize a capture in the packed format (safe to run in another thread than the
    store's)."""
    return b"".join(snapshot_packed.encode_parts(state))


def encode_json(state: dict) -> bytes:
    """Serialize a capture as one JSON document, format version 2."""
    document = {**plain(state), "version": JSON_VERSION}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def plain(state: dict) -> dict:
    """A capture with its `versions` and `events` made plain lists (see
    mvcc_capture.CapturedVersions and CapturedEvents)."""
    lazy = {name: value.to_list() for name, value in state.items() if isinstance(value, (CapturedVersions, CapturedEvents))}
    return {**state, **lazy} if lazy else state


def decode(data: bytes | memoryview, *, loads=None) -> object:
    """The parsed state of snapshot bytes of any readable version, to give to
    KVStore.from_capture.  `loads` parses JSON (bytes or a memoryview); the standard
    library's by default."""
    if snapshot_packed.is_packed(data):
        state = snapshot_packed.decode(data, loads=loads or snapshot_packed.loads_json)
        return {"format": FORMAT, "version": VERSION, **state}
    try:
        return (loads or snapshot_packed.loads_json)(data)
    except (ValueError, TypeError) as error:  # UnicodeDecodeError is a ValueError
        raise SnapshotError(f"snapshot is not valid JSON: {error}") from None


def check_format(state: object) -> None:
    """SnapshotError unless `state` is a parsed abcd-kv snapshot of a readable version."""
    if type(state) is not dict or state.get("format") != FORMAT:
        raise SnapshotError("snapshot is not an abcd-kv snapshot")
    if state.get("version") not in READABLE_VERSIONS:
        raise SnapshotError(
            f"snapshot format version {state.get('version')!r} is not supported (this abcd reads versions 1, 2 and 3)"
        )
