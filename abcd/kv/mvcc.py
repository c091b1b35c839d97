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
- `capture()` (for a snapshot: mvcc_capture.py makes its form and loads it back)
  shares the version lists with the capture instead of copying them, so that it costs pointer copies, not a pass over every version (which
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
            for event in each_event(written[i]):
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

    def capture(self) -> tuple[int, int, list[str], dict[str, list[KV]], list[int], list]:
        """The state as containers that later changes here do not touch: (revision,
        compact_revision, the keys in order, the version lists by key, the event
        revisions, the events); mvcc_capture.py makes a snapshot's form of it.

        Cheap enough for the event loop: the key order, the table of version lists and
        the event lists are copied (pointers), the version lists themselves are shared
        and copied on write from now on (the KVs are shared anyway, being immutable).
        """
        self._unshared = set()
        return (
            self.revision,
            self.compact_revision,
            self._index.to_list(),
            self._versions.copy(),
            self._event_revs.copy(),
            self._events.copy(),
        )

    @classmethod
    def from_parts(
        cls,
        history_limit: int | None,
        *,
        revision: int,
        compact_revision: int,
        versions: dict[str, list[KV]],
        live: dict[str, KV],
        index: SortedKeys,
        event_revs: list[int],
        events: list[Event | list[Event]],
    ) -> "MVCC":
        """An MVCC holding tables a snapshot loader built and checked (mvcc_capture.py);
        the tables are taken over, not copied."""
        mvcc = cls(history_limit)
        mvcc.revision = revision
        mvcc.compact_revision = compact_revision
        mvcc._versions = versions
        mvcc.live = live
        mvcc._index = index
        mvcc._event_revs = event_revs
        mvcc._events = events
        mvcc._compact_due = mvcc._due()
        return mvcc


def each_event(written: Event | list[Event]) -> list[Event] | tuple[Event]:
    """The events of one write as stored in `MVCC._events`, as a sequence."""
    return (written,) if type(written) is tuple else written


