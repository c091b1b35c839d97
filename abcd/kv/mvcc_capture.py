"""The MVCC tables in a snapshot: captured for encoding, loaded back.

`captured(mvcc.capture())` is the snapshot's view of the tables (kv/snapshot.py,
format version 2): `versions` and `events` are a CapturedVersions and a
CapturedEvents, which build the compact form only when they are encoded, in the
thread or process that encodes them.  `load(state, history_limit)` is the inverse, for
either JSON format version (1: KVs in full everywhere; 2: compact): it builds and
checks the tables, then hands them to `MVCC.from_parts`.
"""
from __future__ import annotations

from itertools import accumulate, chain, compress, islice, repeat
from operator import gt, itemgetter, lt, not_, sub
from typing import Callable

from .mvcc import (
    CREATE_REVISION,
    KEY,
    KV,
    KV_FIELDS,
    LEASE,
    MOD_REVISION,
    MVCC,
    VALUE,
    VERSION,
    Event,
    each_event,
    event_dict,
)
from .sorted_keys import SortedKeys


def captured(parts: tuple) -> dict:
    """A snapshot's view of `MVCC.capture()`: revision, compact_revision, versions, events."""
    revision, compact_revision, keys, lists, event_revs, events = parts
    return {
        "revision": revision,
        "compact_revision": compact_revision,
        "versions": CapturedVersions(keys, lists),
        "events": CapturedEvents(event_revs, events, lists),
    }


def load(state: dict, history_limit: int | None) -> MVCC:
    """The MVCC a parsed snapshot holds, for either format version (1: KVs in full
    everywhere; 2: compact); raises ValueError/KeyError/TypeError on malformed input."""
    revision = _int(state["revision"], "revision")
    compact_revision = _int(state["compact_revision"], "compact_revision")
    tables = _Tables()
    version = state.get("version")
    if version == 1:
        last = tables.load_v1(state)
    elif version == 2:
        last = tables.load_v2(state)
    else:
        last = tables.load_v3(state)
    if compact_revision > revision or last > revision:
        raise ValueError("revisions are inconsistent")
    return MVCC.from_parts(
        history_limit,
        revision=revision,
        compact_revision=compact_revision,
        versions=tables.versions,
        live=tables.live,
        index=tables.index,
        event_revs=tables.event_revs,
        events=tables.events,
    )


_MOD_REVISION = itemgetter(MOD_REVISION)
_VERSION = itemgetter(VERSION)


class _Tables:
    """The tables of an MVCC as a loader builds them."""

    def __init__(self) -> None:
        self.versions: dict[str, list[KV]] = {}
        self.live: dict[str, KV] = {}
        self.index = SortedKeys()
        self.event_revs: list[int] = []
        self.events: list[Event | list[Event]] = []

    def load_v1(self, state: dict) -> int:
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
            self.add_versions(key, held)
            keys.append(key)
        self.index = SortedKeys(keys)

        def shared(kv: dict | None) -> KV | None:
            if kv is None:
                return None
            _check_kv(kv, kv.get("key") if type(kv) is dict else None)
            held = _kv_from_dict(kv)
            same = by_version.get((held[KEY], held[MOD_REVISION]))
            return same if same == held else held

        return self.load_events(state["events"], lambda rev, event: _event(event, shared))

    def load_v2(self, state: dict) -> int:
        keys = []
        for key, compact in state["versions"]:
            if type(key) is not str or type(compact) is not list or not compact:
                raise ValueError(f"bad version list for key {key!r}")
            self.add_versions(key, [_kv_from_compact(key, item) for item in compact])
            keys.append(key)
        self.index = SortedKeys(keys)
        return self.load_compact_events(state["events"])

    def load_v3(self, state: dict) -> int:
        """The packed format's columns (snapshot_packed.py), turned into the tables in a
        few passes that run in C: zip makes the KV tuples, map and slice the version
        lists, dict the tables.  Python code runs per key only for keys that hold more
        than one version (to check their order).  The integer columns are arrays of
        unsigned integers: nothing negative comes out of them."""
        columns = state["columns"]
        keys, values, counts = columns.keys, columns.values, columns.counts
        ints = (columns.create_revisions, columns.mod_revisions, columns.versions, columns.leases)
        n_keys, n_versions = len(keys), len(values)
        if len(counts) != n_keys or any(len(column) != n_versions for column in ints):
            raise ValueError("the columns' lengths do not match")
        if n_keys and (min(counts) < 1 or sum(counts) != n_versions):
            raise ValueError("the version counts do not add up to the versions")
        if not set(map(type, keys)) <= {str} or not set(map(type, values)) <= {str}:
            raise ValueError("keys and values must be strings")
        if not all(map(lt, keys, islice(keys, 1, None))):
            raise ValueError("the keys are not in strictly increasing order")
        if n_versions == n_keys:  # one version per key, the usual case
            kvs = list(zip(keys, values, *ints))
            lists = list(map(list, zip(kvs)))
            lasts = kvs
        else:
            # One key object per key, shared by its versions, as the live store does.
            kvs = list(zip(chain.from_iterable(map(repeat, keys, counts)), values, *ints))
            ends = list(accumulate(counts))
            lists = list(map(kvs.__getitem__, map(slice, [0, *ends[:-1]], ends)))
            lasts = list(map(kvs.__getitem__, map(sub, ends, repeat(1))))
            for versions in lists:
                if len(versions) > 1:
                    revs = list(map(_MOD_REVISION, versions))
                    if any(map(gt, revs, islice(revs, 1, None))):
                        raise ValueError(f"the versions of key {versions[0][KEY]!r} are not in revision order")
        self.versions = dict(zip(keys, lists))
        live = self.live = dict(zip(keys, lasts))
        for key in [*compress(keys, map(not_, map(_VERSION, lasts)))]:
            del live[key]  # its last version is a tombstone
        self.index = SortedKeys.from_sorted(keys)
        return self.load_compact_events(state["events"])

    def load_compact_events(self, records: list) -> int:
        """Events as versions 2 and 3 write them: [key, i, j] into the version lists."""
        lists = self.versions

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

        return self.load_events(records, event)

    def add_versions(self, key: str, versions: list[KV]) -> None:
        if len(versions) > 1:  # most keys hold one version: nothing to check (a restart's time)
            revs = [kv[MOD_REVISION] for kv in versions]
            if any(a > b for a, b in zip(revs, revs[1:])):
                raise ValueError(f"the versions of key {key!r} are not in revision order")
        self.versions[key] = versions
        last = versions[-1]
        if last[VERSION]:
            self.live[key] = last

    def load_events(self, records: list, event: Callable[[int, object], Event]) -> int:
        last = 0
        for rev, events in records:
            if type(rev) is not int or rev <= last or type(events) is not list:
                raise ValueError(f"bad event record at revision {rev!r}")
            last = rev
            self.event_revs.append(rev)
            loaded = [event(rev, e) for e in events]
            self.events.append(loaded[0] if len(loaded) == 1 else loaded)
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

    @property
    def keys(self) -> list[str]:
        """The keys, in order (do not change the list)."""
        return self._keys

    def lists(self, start: int, stop: int) -> list[list[KV]]:
        """The version lists of keys[start:stop] (do not change them: the store shares them)."""
        return list(map(self._lists.__getitem__, self._keys[start:stop]))


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
        return [self._revs[index], [self._compact(event) for event in each_event(self._events[index])]]

    def __iter__(self):
        for i in range(len(self._revs)):
            yield self[i]

    def to_list(self) -> list[list]:
        return self[:]

    def _compact(self, event: Event) -> list | dict:
        positions = self._positions
        if positions is None:
            # Built once, by the encoder, for the keys the events name (not for every
            # key: a pass over a million keys for ten thousand events).  Every KV of the
            # capture is alive (the lists hold it), so no two share an id, and an id
            # found here is the KV itself.
            lists = self._lists
            named = {e[0][KEY] for written in self._events for e in each_event(written)}
            positions = self._positions = {
                id(kv): i for key in named for i, kv in enumerate(lists.get(key, ()))
            }
        kv, prev = event
        i = positions.get(id(kv))
        j = -1 if prev is None else positions.get(id(prev))
        if i is not None and j is not None and j < i:
            return [kv[KEY], i, j]
        return event_dict(event)


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
