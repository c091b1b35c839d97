"""Snapshot encoding of a KVStore: one JSON document (format version 2).

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
held the KVs in full, with their field names); version 1 is still read.

Everything a restored store needs to answer exactly as the original would: reads at
any revision from the compaction point, watches from there, retried requests.  The
live table and each lease's keys are derived from the versions on restore.  Keys are
written in order, so two stores in the same state give the same bytes.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .auth import AuthState
from .errors import SnapshotError
from .lease import Lease
from .mvcc import LEASE, MVCC, CapturedEvents, CapturedVersions
from .sessions import Sessions

if TYPE_CHECKING:
    from .store import KVStore

FORMAT = "abcd-kv"
VERSION = 2
READABLE_VERSIONS = (1, 2)


def capture(store: "KVStore") -> dict:
    """The state as plain containers that later writes to `store` do not touch."""
    state = {"format": FORMAT, "version": VERSION, "applied_index": store.applied_index}
    state.update(store._mvcc.capture())
    state["last_lease_id"] = store._leases.last_id
    state["leases"] = [[lease.id, lease.ttl] for lease in store._leases.all()]
    state["sessions"] = store._sessions.capture()
    state["auth"] = store._auth.capture()
    return state


def encode(state: dict) -> bytes:
    """Serialize a capture (safe to run in another thread than the store's)."""
    return json.dumps(plain(state), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def plain(state: dict) -> dict:
    """A capture with its `versions` and `events` made plain lists (see
    mvcc.CapturedVersions and CapturedEvents)."""
    lazy = {name: value.to_list() for name, value in state.items() if isinstance(value, (CapturedVersions, CapturedEvents))}
    return {**state, **lazy} if lazy else state


def restore_into(store: "KVStore", data: bytes) -> None:
    """Load a snapshot into `store`, which must be new (KVStore.empty_like)."""
    try:
        state = json.loads(data)
    except (ValueError, TypeError) as error:  # UnicodeDecodeError is a ValueError
        raise SnapshotError(f"snapshot is not valid JSON: {error}") from None
    load(store, state)


def load(store: "KVStore", state: object) -> None:
    """Load a snapshot already parsed from its JSON (by any parser) into a new `store`;
    SnapshotError says what is wrong with it."""
    if type(state) is not dict or state.get("format") != FORMAT:
        raise SnapshotError("snapshot is not an abcd-kv snapshot")
    if state.get("version") not in READABLE_VERSIONS:
        raise SnapshotError(
            f"snapshot format version {state.get('version')!r} is not supported (this abcd reads versions 1 and 2)"
        )
    try:
        applied_index = state["applied_index"]
        if type(applied_index) is not int or applied_index < 0:
            raise ValueError(f"applied_index must be a non-negative integer, got {applied_index!r}")
        mvcc = MVCC.from_capture(state, store._mvcc.history_limit)
        for lease_id, ttl in state["leases"]:
            if type(lease_id) is not int or type(ttl) is not int or lease_id < 1:
                raise ValueError(f"bad lease [{lease_id!r}, {ttl!r}]")
            store._leases.add(Lease(lease_id, ttl))
        last_lease_id = state["last_lease_id"]
        if type(last_lease_id) is not int or last_lease_id < store._leases.last_id:
            raise ValueError(f"last_lease_id {last_lease_id!r} is below a lease id")
        store._leases.last_id = last_lease_id
        for key, kv in mvcc.live.items():
            lease = kv[LEASE]
            if lease:
                if store._leases.get(lease) is None:
                    raise ValueError(f"key {key!r} is attached to lease {lease}, which does not exist")
                store._leases.attach(key, lease)
        sessions = Sessions.from_capture(state["sessions"], store._sessions.max_clients, store._sessions.window)
        auth = AuthState.from_capture(state["auth"]) if "auth" in state else AuthState()
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise SnapshotError(f"snapshot is not valid: {type(error).__name__}: {error}") from None
    store._mvcc = mvcc
    store._sessions = sessions
    store._auth = auth
    store.applied_index = applied_index
