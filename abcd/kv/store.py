"""The key-value state machine: what every node applies, in log order.

Rule 1 (after h11): everything that changes the store's state goes through `apply`,
which takes one committed command and its log index.  Reads (`read`, `get`, `range`,
`events_since`) change nothing.  The store has no clock, no randomness and no I/O, and
never depends on the iteration order of a set, so the same commands give the same state
and the same responses on every node.

Responses are the HTTP API's bodies (docs/api.md):

    put              {"revision", "prev_kv"}
    get              {"kv", "revision"}                 (404 not_found when absent)
    range            {"kvs", "more", "revision"}
    delete           {"deleted", "revision"}
    txn              {"succeeded", "responses", "revision"}; responses[i] mirrors the
                     i-th op of the branch taken: {"put": {"revision", "prev_kv"}},
                     {"get": {"kv", "revision"}} (kv null when absent),
                     {"delete": {"deleted", "revision"}}; every "revision" there is the
                     txn's.  The ops run in order: a get sees the branch's earlier writes.
    lease_grant      {"id", "ttl"}
    lease_keepalive  {"id", "ttl"}
    lease_revoke     {"id", "deleted", "revision"}    (404 lease_not_found when absent)
    lease_expire     {"id", "deleted", "revision"}    (deleted 0 when already gone)
    compact          {"compact_revision", "revision"}
    auth commands    {"auth_revision"}                (auth.py)

"revision" is the store's revision after the command.  A command that fails raises
KVError and leaves the state as it was (checks run before any change).
"""
from __future__ import annotations

import logging
from typing import Callable

from . import mvcc_capture
from . import snapshot as _snapshot
from .auth import AUTH_OPS, AuthState, permission_denied
from .errors import KVError, SnapshotError, bad_request, key_not_found, lease_not_found
from .lease import Lease, Leases
from .mvcc import FIELD_INDEX, LEASE, MVCC, event_dict, kv_dict
from .sessions import DEFAULT_MAX_CLIENTS, DEFAULT_WINDOW, Sessions
from .validate import WRITE_OPS, is_write, validate_command, validate_request

_log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT = 10_000

Listener = Callable[[int, list], None]
RestoreListener = Callable[[], None]


class KVStore:
    def __init__(
        self,
        *,
        history_limit: int | None = DEFAULT_HISTORY_LIMIT,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        client_window: int = DEFAULT_WINDOW,
    ) -> None:
        """`history_limit`: revisions of history kept for old reads and watches (between
        it and twice it; None keeps all until compact()).  `max_clients`, `client_window`:
        bounds of the dedup table (see sessions.py).  Every node must use the same values."""
        if history_limit is not None and history_limit < 1:
            raise ValueError(f"history_limit must be at least 1 or None, got {history_limit}")
        self._mvcc = MVCC(history_limit)
        self._leases = Leases()
        self._sessions = Sessions(max_clients, client_window)
        self._auth = AuthState()
        # Invariant: the index of the last log entry applied (by apply or mark_applied).
        self.applied_index = 0
        self._listeners: list[Listener] = []
        self._restore_listeners: list[RestoreListener] = []

    # ----------------------------------------------------------------------- state

    @property
    def current_revision(self) -> int:
        return self._mvcc.revision

    @property
    def compact_revision(self) -> int:
        return self._mvcc.compact_revision

    @property
    def auth(self) -> AuthState:
        """Users, roles and permissions (read them; change them only through apply)."""
        return self._auth

    def __len__(self) -> int:
        """The number of live keys."""
        return len(self._mvcc.live)

    # ----------------------------------------------------------------------- apply

    def apply(self, cmd: dict, *, index: int, normalized: bool = False) -> dict:
        """Apply the committed command at log index `index`; return its response body.

        Raises KVError for a command that fails (the state is unchanged, but the entry
        counts as applied), and ValueError when `index` does not follow applied_index.
        `normalized=True` skips validation: for commands read from the Raft log, which
        only ever holds what a leader's validate_request (or the node itself) produced,
        so every node would re-check the same bytes for nothing (it cost ~15 % of an
        apply).
        """
        # mark_applied, written out: this runs for every entry on every member.
        if type(index) is not int or index <= self.applied_index:
            raise ValueError(f"log index {index!r} is not after applied_index {self.applied_index}")
        self.applied_index = index
        if not normalized:
            cmd = validate_command(cmd)
        checked_at = cmd.get("auth_revision")
        if checked_at is not None and (checked_at != self._auth.revision or cmd["op"] == "lease_revoke"):
            self._check_again(cmd)
        request_id = cmd.get("request_id")
        if request_id is None:
            return self._put(cmd) if cmd["op"] == "put" else self._execute(cmd)
        if cmd["op"] not in WRITE_OPS and not is_write(cmd):
            return self._execute(cmd)
        client, _, seq_text = request_id.rpartition(":")  # validated: "client:seq"
        seq = int(seq_text)
        outcome = self._sessions.lookup(client, seq)
        if outcome is not None:
            if isinstance(outcome, KVError):
                raise KVError(outcome.status, outcome.code, outcome.message)
            return outcome
        try:
            body = self._execute(cmd)
        except KVError as error:
            self._sessions.record(client, seq, error)
            raise
        self._sessions.record(client, seq, body)
        return body

    def mark_applied(self, index: int) -> None:
        """Record that log entry `index` was applied (also for entries with no command
        for this store: the leader's no-op, configuration changes)."""
        if type(index) is not int or index <= self.applied_index:
            raise ValueError(f"log index {index!r} is not after applied_index {self.applied_index}")
        self.applied_index = index

    def _check_again(self, cmd: dict) -> None:
        """The user's permissions as they are now, for a write checked at another auth
        revision (they may have been revoked since), and a lease revoke's keys (which only
        the store knows).  Every member applies the same state: the same answer."""
        auth = self._auth
        if not auth.enabled:
            return
        user = cmd["auth_user"]
        auth.check(user, cmd)
        if cmd["op"] == "lease_revoke" and not auth.is_root(user):
            lease = self._leases.get(cmd["lease"])
            for key in sorted(lease.keys) if lease is not None else ():
                if not auth.allows(user, "write", key, key + "\0"):
                    raise permission_denied(f"user {user!r} may not write key {key!r} (revoking lease {lease.id} deletes it)")

    def _execute(self, cmd: dict) -> dict:
        kind = cmd["op"]
        if kind == "put":
            return self._put(cmd)
        if kind == "delete":
            return self._delete(cmd)
        if kind == "txn":
            return self._txn(cmd)
        if kind == "lease_grant":
            lease = self._leases.grant(cmd["ttl"])
            return {"id": lease.id, "ttl": lease.ttl}
        if kind == "lease_revoke" or kind == "lease_expire":
            return self._end_lease(cmd["lease"], must_exist=kind == "lease_revoke")
        if kind == "compact":
            self._mvcc.compact(cmd["revision"])
            return {"compact_revision": self._mvcc.compact_revision, "revision": self._mvcc.revision}
        if kind in AUTH_OPS:
            return self._auth.apply(cmd)
        return self._read(cmd)

    def _put(self, cmd: dict) -> dict:
        # The commonest write, so _write_put and _commit are written out here.
        lease = cmd["lease"]
        if lease and self._leases.get(lease) is None:
            raise lease_not_found(lease)
        mvcc = self._mvcc
        rev = mvcc.revision + 1
        key = cmd["key"]
        kv, prev = mvcc.put(key, cmd["value"], lease, rev)
        if lease or (prev is not None and prev[LEASE]):
            self._move_lease(key, prev[LEASE] if prev is not None else 0, lease)
        event = (kv, prev)
        mvcc.commit_event(rev, event)
        if self._listeners:
            self._notify(rev, [event])
        return {"revision": rev, "prev_kv": kv_dict(prev)}

    def _delete(self, cmd: dict) -> dict:
        keys = self._keys_to_delete(cmd["key"], cmd["prefix"])
        if not keys:
            return {"deleted": 0, "revision": self._mvcc.revision}
        rev = self._mvcc.revision + 1
        events = [self._write_delete(key, rev) for key in keys]
        self._commit(rev, events)
        return {"deleted": len(keys), "revision": rev}

    def _end_lease(self, lease_id: int, *, must_exist: bool) -> dict:
        lease = self._leases.get(lease_id)
        if lease is None:
            if must_exist:
                raise lease_not_found(lease_id)
            # An expiry racing a revoke that came first: nothing left to do.
            return {"id": lease_id, "deleted": 0, "revision": self._mvcc.revision}
        keys = sorted(lease.keys)
        self._leases.remove(lease_id)
        rev = self._mvcc.revision
        if keys:
            rev += 1
            events = [self._write_delete(key, rev) for key in keys]
            self._commit(rev, events)
        return {"id": lease_id, "deleted": len(keys), "revision": rev}

    # ----------------------------------------------------------------------- txn

    def _txn(self, cmd: dict) -> dict:
        live = self._mvcc.live
        succeeded = all(_compare(live.get(c["key"]), c) for c in cmd["compare"])
        ops = cmd["success"] if succeeded else cmd["failure"]
        for op in ops:  # check before changing anything
            put = op.get("put")
            if put is not None and put["lease"] and self._leases.get(put["lease"]) is None:
                raise lease_not_found(put["lease"])
        rev = self._mvcc.revision + 1
        events: list[tuple] = []
        responses: list[dict] = []
        for op in ops:
            if "put" in op:
                put = op["put"]
                kv, prev = self._write_put(put["key"], put["value"], put["lease"], rev)
                events.append((kv, prev))
                responses.append({"put": {"revision": 0, "prev_kv": kv_dict(prev)}})
            elif "get" in op:
                responses.append({"get": {"kv": kv_dict(live.get(op["get"]["key"])), "revision": 0}})
            else:
                delete = op["delete"]
                keys = self._keys_to_delete(delete["key"], delete["prefix"])
                events.extend(self._write_delete(key, rev) for key in keys)
                responses.append({"delete": {"deleted": len(keys), "revision": 0}})
        if events:
            self._commit(rev, events)
        else:
            rev = self._mvcc.revision
        for response in responses:
            next(iter(response.values()))["revision"] = rev
        return {"succeeded": succeeded, "responses": responses, "revision": rev}

    # ----------------------------------------------------------------------- write steps

    def _write_put(self, key: str, value: str, lease: int, rev: int) -> tuple[tuple, tuple | None]:
        kv, prev = self._mvcc.put(key, value, lease, rev)
        self._move_lease(key, prev[LEASE] if prev is not None else 0, lease)
        return kv, prev

    def _move_lease(self, key: str, old: int, lease: int) -> None:
        """`key` was attached to lease `old` (0: none) and now is to `lease`."""
        if old != lease:
            if old:
                self._leases.detach(key, old)
            if lease:
                self._leases.attach(key, lease)

    def _write_delete(self, key: str, rev: int) -> tuple:
        tombstone, prev = self._mvcc.delete(key, rev)
        if prev[LEASE]:
            self._leases.detach(key, prev[LEASE])
        return (tombstone, prev)

    def _keys_to_delete(self, key: str, prefix: bool) -> list[str]:
        if prefix:
            return self._mvcc.live_keys(key)
        return [key] if key in self._mvcc.live else []

    def _commit(self, rev: int, events: list[tuple]) -> None:
        self._mvcc.commit(rev, events)
        if self._listeners:
            self._notify(rev, events)

    def _notify(self, rev: int, held: list[tuple]) -> None:
        # Listeners (watches) get the API's form, made once for all of them.
        events = [event_dict(event) for event in held]
        for listener in list(self._listeners):
            try:
                listener(rev, events)
            except Exception:
                # A broken watcher must not stop the state machine: the write is applied.
                _log.exception("kv listener %r failed at revision %d", listener, rev)

    # ----------------------------------------------------------------------- reads

    def read(self, request: dict) -> dict:
        """Serve a read request (get, range, lease_keepalive, a txn without writes) from
        the current state and return its response body; raises KVError.

        Whether the state is recent enough (linearizable reads) is the caller's business.
        """
        op = validate_request(request)
        if is_write(op):
            raise ValueError(f"{op['op']} changes state; it must be applied through the log")
        return self._read(op)

    def _read(self, op: dict) -> dict:
        kind = op["op"]
        mvcc = self._mvcc
        if kind == "get":
            kv = mvcc.get(op["key"], op["revision"])
            if kv is None:
                raise key_not_found(op["key"])
            return {"kv": kv_dict(kv), "revision": mvcc.revision}
        if kind == "range":
            kvs, more = mvcc.range(op["prefix"], op["limit"], op["revision"])
            return {"kvs": list(map(kv_dict, kvs)), "more": more, "revision": mvcc.revision}
        if kind == "lease_keepalive":
            lease = self._leases.get(op["lease"])
            if lease is None:
                raise lease_not_found(op["lease"])
            return {"id": lease.id, "ttl": lease.ttl}
        if kind == "txn":
            return self._txn(op)  # no writes in either branch: nothing changes
        raise bad_request(f"op {kind!r} is not a read")

    def get(self, key: str, revision: int | None = None) -> dict | None:
        """The KV of `key` at `revision` (None: the latest), or None when absent.

        Raises KVError `compacted` / `future_revision` for a revision out of reach."""
        return kv_dict(self._mvcc.get(key, revision))

    def range(self, prefix: str, limit: int | None = None, revision: int | None = None) -> tuple[list[dict], bool]:
        """(kvs, more): the KVs under `prefix`, sorted by key, at most `limit`."""
        kvs, more = self._mvcc.range(prefix, limit, revision)
        return list(map(kv_dict, kvs)), more

    def lease(self, lease_id: int) -> Lease | None:
        """The lease (id, ttl, keys), or None.  Do not modify it."""
        return self._leases.get(lease_id)

    def leases(self) -> list[tuple[int, int]]:
        """(id, ttl) of every lease, by id: what a new leader starts expiry timers for."""
        return [(lease.id, lease.ttl) for lease in self._leases.all()]

    # ----------------------------------------------------------------------- watches

    def events_since(self, revision: int, key: str | None = None, prefix: str | None = None) -> list[tuple[int, dict]]:
        """[(revision, event)] at revisions >= `revision` (a watch's start_revision), for
        `key`, `prefix` or everything; raises KVError `compacted` below the compaction
        point.  Events: {"type": "put"/"delete", "kv": KV, "prev_kv": KV or None}."""
        return [(rev, event_dict(event)) for rev, event in self._mvcc.events_since(revision, key, prefix)]

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(revision, events)` after every applied write that changed
        something, with the events of that revision in order.  It must not modify them."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def add_restore_listener(self, listener: RestoreListener) -> None:
        """Call `listener()` after `replace_state` replaced the whole state (a snapshot
        from the leader): the revisions in between were never reported one by one."""
        self._restore_listeners.append(listener)

    def remove_restore_listener(self, listener: RestoreListener) -> None:
        self._restore_listeners.remove(listener)

    def compact(self, revision: int) -> None:
        """Forget history below `revision`.  Not replicated: for a compaction every node
        agrees on, apply the command {"op": "compact", "revision": N} instead."""
        self._mvcc.compact(revision)

    # ----------------------------------------------------------------------- snapshots

    def capture(self) -> dict:
        """The whole state as containers that later writes do not change (the immutable
        KVs are shared, the version lists copied on write: see mvcc.py), so that it can
        be encoded (kv/snapshot.py) in another thread while this store goes on."""
        state = {"format": _snapshot.FORMAT, "version": _snapshot.VERSION, "applied_index": self.applied_index}
        state.update(mvcc_capture.captured(self._mvcc.capture()))
        state["last_lease_id"] = self._leases.last_id
        state["leases"] = self._leases.capture()
        state["sessions"] = self._sessions.capture()
        state["auth"] = self._auth.capture()
        return state

    @classmethod
    def from_capture(
        cls,
        state: object,
        *,
        history_limit: int | None = DEFAULT_HISTORY_LIMIT,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        client_window: int = DEFAULT_WINDOW,
    ) -> "KVStore":
        """The store a parsed snapshot (a capture, read back by any JSON parser) holds;
        SnapshotError says what is wrong with it."""
        _snapshot.check_format(state)
        store = cls(history_limit=history_limit, max_clients=max_clients, client_window=client_window)
        try:
            applied_index = state["applied_index"]
            if type(applied_index) is not int or applied_index < 0:
                raise ValueError(f"applied_index must be a non-negative integer, got {applied_index!r}")
            mvcc = mvcc_capture.load(state, history_limit)
            leases = Leases.from_capture(state["leases"], state["last_lease_id"], mvcc.live)
            sessions = Sessions.from_capture(state["sessions"], max_clients, client_window)
            auth = AuthState.from_capture(state["auth"]) if "auth" in state else AuthState()
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise SnapshotError(f"snapshot is not valid: {type(error).__name__}: {error}") from None
        store._mvcc = mvcc
        store._leases = leases
        store._sessions = sessions
        store._auth = auth
        store.applied_index = applied_index
        return store

    def snapshot(self) -> bytes:
        return _snapshot.encode(self.capture())

    def bounds(self) -> dict:
        """This store's constructor bounds, to make another like it (every node must use
        the same): from_capture(state, **store.bounds())."""
        return {
            "history_limit": self._mvcc.history_limit,
            "max_clients": self._sessions.max_clients,
            "client_window": self._sessions.window,
        }

    def replace_state(self, restored: "KVStore") -> None:
        """Take over the whole state of `restored` (a snapshot loaded with this store's
        bounds),
        keeping this object, its commit listeners and its restore listeners.

        Used when the node installs a snapshot from the leader: everything holding this
        store (the applier, watches, the API) goes on with the new state, and restore
        listeners are told, so that watches can catch up from the new history.
        `restored` must not be used afterwards.
        """
        self._mvcc = restored._mvcc
        self._leases = restored._leases
        self._sessions = restored._sessions
        self._auth = restored._auth
        self.applied_index = restored.applied_index
        for listener in list(self._restore_listeners):
            try:
                listener()
            except Exception:
                _log.exception("kv restore listener %r failed", listener)

    @classmethod
    def restore(
        cls,
        data: bytes,
        *,
        history_limit: int | None = DEFAULT_HISTORY_LIMIT,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        client_window: int = DEFAULT_WINDOW,
    ) -> "KVStore":
        """The store a snapshot was taken of; raises SnapshotError if it is not valid."""
        return cls.from_capture(
            _snapshot.decode(data), history_limit=history_limit, max_clients=max_clients, client_window=client_window
        )


def _compare(kv: tuple | None, c: dict) -> bool:
    target = c["target"]
    if kv is None:
        # As etcd: a value compare against an absent key always fails; the other
        # targets compare against 0.
        if target == "value":
            return False
        actual: object = 0
    else:
        actual = kv[FIELD_INDEX[target]]
    expected = c["value"]
    op = c["op"]
    if op == "==":
        return actual == expected
    if op == "!=":
        return actual != expected
    if op == "<":
        return actual < expected  # type: ignore[operator]
    return actual > expected  # type: ignore[operator]
