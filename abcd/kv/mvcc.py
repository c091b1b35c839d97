"""Multi-version storage: revisions, live keys, each key's versions, the event history.

Theory of operation (the model is etcd's mvcc package):

- The store has one cluster-wide `revision`, 1 when empty.  Every write that changes
  something takes the next revision; all changes of one write (a txn's puts and deletes,
  a prefix delete, a lease revocation) share it.
- A KV is held as the tuple `(key, value, create_revision, mod_revision, version,
  lease)` (88 bytes, where the dict the API shows took 272: "Memory per key" in
  performance.md); `kv_dict` makes the API's dict `{"key", "value", "create_revision",
  "mod_revision", "version", "lease"}` of it, which the store does for every KV it
  answers or reports.  The live table, the version lists and the events share the
  same tuples.
- A deletion is recorded as a tombstone KV: `version` 0, `create_revision` 0, empty
  value, `mod_revision` the deleting revision.  It is the `kv` of a delete event, as
  in etcd, and marks in a version list where the key stopped existing.
- `_versions[key]` lists a key's KVs (tombstones included) in revision order, back to
  the compaction point.  A read at revision R takes the last one with mod_revision <= R.
- An event is the tuple `(kv, prev_kv)` (prev_kv None when the key did not exist); its
  type is "delete" when kv is a tombstone, else "put".  `event_dict` makes the API's
  `{"type", "kv", "prev_kv"}` of it.
- `_event_revs[i]` / `_events[i]`: the revision and the event of the i-th write, for
  watches: the event itself when the write made one (puts and deletes of one key, the
  usual case), else the list of its events.  One object per write instead of a list
  and its event: each is kept for the history limit, and the garbage collector's young
  collections walk every one of them (performance.md).
- `compact(C)` forgets what no read at a revision >= C can see: events below C, and in
  each key's list the versions older than its last one at or below C (that one, too,
  when it is a tombstone).  Reads and watches below C then fail with `compacted`.
- `capture()` (for a snapshot) shares the version lists with the capture instead of
  copying them, so that it costs pointer copies, not a pass over every version (which
  stalled the node's event loop for ~0.1 s per 60,000 keys): after a capture, a key's
  list is copied before its first change (copy on write; `_own`).

Invariants:
  compact_revision <= revision
  live[key] is versions[key][-1] when that is not a tombstone; key not in live otherwise
  _index holds exactly the keys of _versions; no version list is empty
  _event_revs is strictly increasing and holds every revision in [compact_revision, revision]
    that changed something
  a version list that a capture may hold is never changed in place: after the first
    capture, a list is changed only if its key is in _unshared (the lists made since the
    last capture)
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Callable

from .errors import already_compacted, bad_request, compacted, future_revision
from .sorted_keys import SortedKeys

# A KV's fields, in the order of its tuple.
KEY, VALUE, CREATE_REVISION, MOD_REVISION, VERSION, LEASE = range(6)
KV_FIELD_NAMES = ("key", "value", "create_revision", "mod_revision", "version", "lease")
KV_FIELDS = frozenset(KV_FIELD_NAMES)
FIELD_INDEX = {name: i for i, name in enumerate(KV_FIELD_NAMES)}

_MOD_REVISION = itemgetter(MOD_REVISION)

KV = tuple  # (key, value, create_revision, mod_revision, version, lease)
Event = tuple  # (kv, prev_kv or None)


def kv_dict(kv: KV | None) -> dict | None:
    """The API's form of a KV (None stays None)."""
    if kv is None:
        return None
    key, value, create_revision, mod_revision, version, lease = kv
    return {"key": key, "value": value, "create_revision": create_revision, "mod_revision": mod_revision,
            "version": version, "lease": lease}


def event_dict(event: Event) -> dict:
    """The API's form of an event: {"type", "kv", "prev_kv"}."""
    kv, prev = event
    return {"type": "put" if kv[VERSION] else "delete", "kv": kv_dict(kv), "prev_kv": kv_dict(prev)}


# Automatic compaction trims history in chunks of history_limit / COMPACT_SLICES.
COMPACT_SLICES = 16


class MVCC:
    __slots__ = (
        "revision",
        "compact_revision",
        "history_limit",
        "live",
        "_versions",
        "_index",
        "_event_revs",
        "_events",
        "_unshared",
        "_compact_due",
    )

    def __init__(self, history_limit: int | None = None) -> None:
        self.revision = 1
        # Reads and watches at revisions below this fail; 0 while nothing was compacted.
        self.compact_revision = 0
        # Keep at least this many revisions of history, at most 1/16 more (None:
        # keep everything until compact() is called).  Applied identically on every
        # node, since it depends on the revision alone.
        self.history_limit = history_limit
        self.live: dict[str, KV] = {}
        self._versions: dict[str, list[KV]] = {}
        self._index = SortedKeys()
        self._event_revs: list[int] = []
        self._events: list[Event | list[Event]] = []
        # Keys whose version list was made (or copied) since the last capture; None
        # until the first capture, when no list is shared.
        self._unshared: set[str] | None = None
        self._compact_due = self._due()

    # ----------------------------------------------------------------------- writes
    # put and delete change the tables at revision `rev` (= revision + 1); the caller then
    # calls commit(rev, events) once for the whole write.

    def put(self, key: str, value: str, lease: int, rev: int) -> tuple[KV, KV | None]:
        prev = self.live.get(key)
        if prev is None:
            kv = (key, value, rev, rev, 1, lease)
            if key not in self._versions:
                self._versions[key] = [kv]
                self._index.add(key)
                if self._unshared is not None:
                    self._unshared.add(key)  # a new list: no capture holds it
            else:
                self._own(key).append(kv)
        else:
            # The key object the table already holds: one string per key, however many
            # versions, and dict lookups with it match by identity.
            kv = (prev[KEY], value, prev[CREATE_REVISION], rev, prev[VERSION] + 1, lease)
            # _own(key), written out for the commonest write: no capture shares a list.
            (self._versions[key] if self._unshared is None else self._own(key)).append(kv)
        self.live[key] = kv
        return kv, prev

    def delete(self, key: str, rev: int) -> tuple[KV, KV]:
        """Delete a live key; returns (tombstone, previous KV)."""
        prev = self.live.pop(key)
        tombstone = (key, "", 0, rev, 0, 0)
        self._own(key).append(tombstone)
        return tombstone, prev

    def _own(self, key: str) -> list[KV]:
        """The version list of `key`, safe to change: copied first if a capture may hold it."""
        versions = self._versions[key]
        unshared = self._unshared
        if unshared is not None and key not in unshared:
            versions = self._versions[key] = versions.copy()
            unshared.add(key)
        return versions

    def commit(self, rev: int, events: list[Event]) -> None:
        self.commit_event(rev, events[0] if len(events) == 1 else events)

    def commit_event(self, rev: int, written: Event | list[Event]) -> None:
        """commit() for the usual write of one event, given as itself (or a list)."""
        self.revision = rev
        self._event_revs.append(rev)
        self._events.append(written)
        if rev >= self._compact_due:
            # Compact in small chunks (1/16 of the limit): the cost per write stays O(1)
            # and no single write pays for a big trim (a chunk of the whole limit was a
            # 50 ms stall every 10,000 writes, the writes' p99).
            self.compact(rev - self.history_limit)

    def _due(self) -> int | float:
        """The revision whose commit compacts automatically next (inf: never)."""
        limit = self.history_limit
        if limit is None:
            return float("inf")
        return self.compact_revision + limit + max(1, limit // COMPACT_SLICES)

    # ----------------------------------------------------------------------- reads

    def live_keys(self, prefix: str) -> list[str]:
        """The live keys starting with `prefix`, sorted."""
        live = self.live
        return [key for key in self._index.starting_with(prefix) if key in live]

    def check_revision(self, revision: int) -> None:
        if revision < 0:
            raise bad_request(f"revision must be at least 0 (0: the latest), got {revision}")
        if revision > self.revision:
            raise future_revision(revision, self.revision)
        if revision < self.compact_revision:
            raise compacted(revision, self.compact_revision)

    def get(self, key: str, revision: int | None = None) -> KV | None:
        """The KV of `key` at `revision` (None or 0: the latest), None if absent then."""
        if not revision or revision == self.revision:
            return self.live.get(key)
        self.check_revision(revision)
        return self._at(key, revision)

    def range(self, prefix: str, limit: int | None = None, revision: int | None = None) -> tuple[list[KV], bool]:
        """KVs whose key starts with `prefix`, sorted by key, at most `limit` (None or 0:
        all), at `revision` (None or 0: the latest); `more` says whether some were left."""
        latest = not revision or revision == self.revision
        if not latest:
            self.check_revision(revision)
        live = self.live
        kvs: list[KV] = []
        for key in self._index.starting_with(prefix):
            kv = live.get(key) if latest else self._at(key, revision)
            if kv is None:
                continue
            if limit and len(kvs) == limit:
                return kvs, True
            kvs.append(kv)
        return kvs, False

    def _at(self, key: str, revision: int) -> KV | None:
        versions = self._versions.get(key)
        if not versions:
            return None
        i = bisect_right(versions, revision, key=_MOD_REVISION)
        if i == 0:
            return None
        kv = versions[i - 1]
        return kv if kv[VERSION] else None

    def events_since(self, revision: int, key: str | None = None, prefix: str | None = None) -> list[tuple[int, Event]]:
        """Events at revisions >= `revision`, oldest first, for `key` or `prefix` (or all)."""
        if type(revision) is not int or revision < 1:
            raise bad_request(f"start revision must be an integer of at least 1, got {revision!r}")
        if key is not None and prefix is not None:
            raise bad_request("watch either a key or a prefix, not both")
        if revision < self.compact_revision:
            raise compacted(revision, self.compact_revision)
        revs, written = self._event_revs, self._events
        out: list[tuple[int, Event]] = []
        for i in range(bisect_left(revs, revision), len(revs)):
            rev = revs[i]
            for event in _each(written[i]):
                k = event[0][KEY]
                if (key is None or k == key) and (prefix is None or k.startswith(prefix)):
                    out.append((rev, event))
        return out

    # ----------------------------------------------------------------------- compaction

    def compact(self, revision: int) -> None:
        if revision > self.revision:
            raise future_revision(revision, self.revision)
        if revision <= self.compact_revision:
            raise already_compacted(revision, self.compact_revision)
        # Events below `revision` are forgotten.  Their versions, and one written at
        # `revision` itself, are each the last of their key at some revision <= the new
        # compaction point, so every version older than one of them is invisible from
        # now on.  Walking those events in order trims each key's list without looking
        # inside the versions: the event's KV is the list's first or second entry (an
        # older event of its key, already walked, dropped what came before its own KV).
        # These KVs are thousands of writes old and out of the CPU caches, so every
        # object touched costs a cache miss: searching each key's list by revision
        # instead made the trim a quarter slower (performance.md).
        revs = self._event_revs
        n = bisect_left(revs, revision)
        through = n + 1 if n < len(revs) and revs[n] == revision else n
        for written in self._events[:through]:
            if type(written) is tuple:
                self._trim_before(written[0], revision)
            else:
                for event in written:
                    self._trim_before(event[0], revision)
        del revs[:n]
        del self._events[:n]
        self.compact_revision = revision
        self._compact_due = self._due()

    def _trim_before(self, kv: KV, revision: int) -> None:
        """Drop the versions of kv's key older than `kv`, which is its last version at
        some revision <= `revision`; `kv` too if it is a tombstone (a read of an absent
        key needs no version at all)."""
        key = kv[KEY]
        versions = self._versions.get(key)
        if versions is None:
            return  # a tombstone already dropped, with its key
        if versions[0] is kv:
            drop = 0
        elif len(versions) > 1 and versions[1] is kv:
            drop = 1
        else:
            # Not where the walk leaves it (an event walked twice, or one whose KV a
            # trim by revision dropped): trim by revision instead.
            i = bisect_right(versions, revision, key=_MOD_REVISION)  # versions[:i] are <= revision
            if i == 0:
                return
            kv, drop = versions[i - 1], i - 1
        if not kv[VERSION]:
            drop += 1
        if not drop:
            return
        unshared = self._unshared
        if unshared is not None and key not in unshared:
            versions = self._own(key)
        del versions[:drop]
        if not versions:
            del self._versions[key]
            self._index.remove(key)

    # ----------------------------------------------------------------------- snapshots

    def capture(self) -> dict:
        """The state as containers that later changes here do not touch, sorted by key.

        Cheap enough for the event loop: the key order, the table of version lists and
        the event lists are copied (pointers), the version lists themselves are shared
        and copied on write from now on (the KVs are shared anyway, being immutable);
        `versions` and `events` are a CapturedVersions and a CapturedEvents, which build
        the snapshot's compact form when they are encoded (kv/snapshot.py, version 2).
        """
        self._unshared = set()
        lists = self._versions.copy()
        return {
            "revision": self.revision,
            "compact_revision": self.compact_revision,
            "versions": CapturedVersions(self._index.to_list(), lists),
            "events": CapturedEvents(self._event_revs.copy(), self._events.copy(), lists),
        }

    @classmethod
    def from_capture(cls, state: dict, history_limit: int | None) -> "MVCC":
        """Inverse of capture(), for either snapshot format version (1: KVs in full
        everywhere; 2: compact); raises ValueError/KeyError/TypeError on malformed input."""
        mvcc = cls(history_limit)
        mvcc.revision = _int(state["revision"], "revision")
        mvcc.compact_revision = _int(state["compact_revision"], "compact_revision")
        mvcc._compact_due = mvcc._due()
        if state.get("version") == 1:
            last = mvcc._load_v1(state)
        else:
            last = mvcc._load_v2(state)
        if mvcc.compact_revision > mvcc.revision or last > mvcc.revision:
            raise ValueError("revisions are inconsistent")
        return mvcc

    def _load_v1(self, state: dict) -> int:
        # Share KV objects between versions and events, as the live store does.
        by_version: dict[tuple[str, int], KV] = {}
        keys = []
        for key, versions in state["versions"]:
            if type(key) is not str or type(versions) is not list or not versions:
                raise ValueError(f"bad version list for key {key!r}")
            held = []
            for kv in versions:
                _check_kv(kv, key)
                held.append(_kv_from_dict(kv))
                by_version[(key, kv["mod_revision"])] = held[-1]
            self._add_versions(key, held)
            keys.append(key)
        self._index = SortedKeys(keys)

        def shared(kv: dict | None) -> KV | None:
            if kv is None:
                return None
            _check_kv(kv, kv.get("key") if type(kv) is dict else None)
            held = _kv_from_dict(kv)
            same = by_version.get((held[KEY], held[MOD_REVISION]))
            return same if same == held else held

        return self._load_events(state["events"], lambda rev, event: _event(event, shared))

    def _load_v2(self, state: dict) -> int:
        keys = []
        for key, compact in state["versions"]:
            if type(key) is not str or type(compact) is not list or not compact:
                raise ValueError(f"bad version list for key {key!r}")
            self._add_versions(key, [_kv_from_compact(key, item) for item in compact])
            keys.append(key)
        self._index = SortedKeys(keys)
        lists = self._versions

        def event(rev: int, item: object) -> Event:
            if type(item) is not list:
                return _event(item, _full_kv)  # a KV no version list holds: written in full
            if len(item) != 3:
                raise ValueError(f"bad event: {item!r:.200}")
            key, i, j = item
            versions = lists.get(key) if type(key) is str else None
            if versions is None or type(i) is not int or type(j) is not int or not 0 <= i < len(versions):
                raise ValueError(f"event {item!r:.200} names no version")
            kv = versions[i]
            if kv[MOD_REVISION] != rev or not -1 <= j < i:
                raise ValueError(f"event {item!r:.200} at revision {rev} does not match its versions")
            return (kv, versions[j] if j >= 0 else None)

        return self._load_events(state["events"], event)

    def _add_versions(self, key: str, versions: list[KV]) -> None:
        if len(versions) > 1:  # most keys hold one version: nothing to check (a restart's time)
            revs = [kv[MOD_REVISION] for kv in versions]
            if any(a > b for a, b in zip(revs, revs[1:])):
                raise ValueError(f"the versions of key {key!r} are not in revision order")
        self._versions[key] = versions
        last = versions[-1]
        if last[VERSION]:
            self.live[key] = last

    def _load_events(self, records: list, event: Callable[[int, object], Event]) -> int:
        last = 0
        for rev, events in records:
            if type(rev) is not int or rev <= last or type(events) is not list:
                raise ValueError(f"bad event record at revision {rev!r}")
            last = rev
            self._event_revs.append(rev)
            loaded = [event(rev, e) for e in events]
            self._events.append(loaded[0] if len(loaded) == 1 else loaded)
        return last


# A KV's compact form (written as a JSON array): all its fields but the key.
_compact_kv = itemgetter(VALUE, CREATE_REVISION, MOD_REVISION, VERSION, LEASE)


def _kv_from_compact(key: str, item: object) -> KV:
    if type(item) is not list or len(item) != 5:
        raise ValueError(f"bad version of key {key!r}: {item!r:.200}")
    value, create_revision, mod_revision, version, lease = item
    if (
        type(value) is not str
        or type(create_revision) is not int
        or type(mod_revision) is not int
        or type(version) is not int
        or type(lease) is not int
        or (create_revision | mod_revision | version | lease) < 0  # negative if any one is
    ):
        raise ValueError(f"bad version of key {key!r}: {item!r:.200}")
    return (key, value, create_revision, mod_revision, version, lease)


def _kv_from_dict(kv: dict) -> KV:
    """A KV checked by _check_kv, as held."""
    return (kv["key"], kv["value"], kv["create_revision"], kv["mod_revision"], kv["version"], kv["lease"])


class CapturedVersions:
    """The `versions` of a capture: [[key, [[value, create_revision, mod_revision,
    version, lease], ...]], ...] in key order, as a read-only sequence whose pairs are
    made when read (by whoever encodes the capture, in its own thread or process), so
    that capturing costs no pass over the keys' versions."""

    __slots__ = ("_keys", "_lists")

    def __init__(self, keys: list[str], lists: dict[str, list[KV]]) -> None:
        self._keys = keys
        self._lists = lists

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index: int | slice):
        lists = self._lists
        if isinstance(index, slice):
            return [[key, list(map(_compact_kv, lists[key]))] for key in self._keys[index]]
        key = self._keys[index]
        return [key, list(map(_compact_kv, lists[key]))]

    def __iter__(self):
        for i in range(len(self._keys)):
            yield self[i]

    def to_list(self) -> list[list]:
        return self[:]


class CapturedEvents:
    """The `events` of a capture: [[revision, [event, ...]], ...], made when read like
    CapturedVersions.  An event is written as [key, i, j]: its KV is the key's version
    i, its previous KV version j (-1: none), in the version lists of the same capture;
    an event whose KV the lists no longer hold (trimmed at the compaction point) is
    written in full, {"type", "kv", "prev_kv"}.  The KVs are found by identity, since
    the table lets one revision hold several versions of a key (commands never do: a
    txn branch writes a key at most once), and an equal KV is not the same version."""

    __slots__ = ("_revs", "_events", "_lists", "_positions")

    def __init__(self, revs: list[int], events: list[Event | list[Event]], lists: dict[str, list[KV]]) -> None:
        self._revs = revs
        self._events = events
        self._lists = lists
        self._positions: dict[int, int] | None = None  # id(KV) -> its index in its key's list

    def __len__(self) -> int:
        return len(self._revs)

    def __getitem__(self, index: int | slice):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._revs)))]
        return [self._revs[index], [self._compact(event) for event in _each(self._events[index])]]

    def __iter__(self):
        for i in range(len(self._revs)):
            yield self[i]

    def to_list(self) -> list[list]:
        return self[:]

    def _compact(self, event: Event) -> list | dict:
        positions = self._positions
        if positions is None:
            # Built once, by the encoder: every KV of the capture is alive (the lists
            # hold it), so no two share an id, and an id found here is the KV itself.
            positions = self._positions = {
                id(kv): i for versions in self._lists.values() for i, kv in enumerate(versions)
            }
        kv, prev = event
        i = positions.get(id(kv))
        j = -1 if prev is None else positions.get(id(prev))
        if i is not None and j is not None and j < i:
            return [kv[KEY], i, j]
        return event_dict(event)


def _each(written: Event | list[Event]) -> list[Event] | tuple[Event]:
    """The events of one write as stored in `MVCC._events`, as a sequence."""
    return (written,) if type(written) is tuple else written


def _int(value: object, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _event(event: object, shared) -> Event:
    if type(event) is not dict or event.keys() != {"type", "kv", "prev_kv"} or event["type"] not in ("put", "delete"):
        raise ValueError(f"bad event: {event!r:.200}")
    kv = shared(event["kv"])
    if kv is None or (event["type"] == "put") != bool(kv[VERSION]):
        raise ValueError(f"bad event: {event!r:.200}")
    return (kv, shared(event["prev_kv"]))


def _full_kv(kv: object) -> KV | None:
    if kv is None:
        return None
    _check_kv(kv, kv.get("key") if type(kv) is dict else None)
    return _kv_from_dict(kv)


def _check_kv(kv: object, key: object) -> None:
    if type(kv) is not dict or kv.keys() != KV_FIELDS or kv["key"] != key:
        raise ValueError(f"bad KV for key {key!r}: {kv!r:.200}")
