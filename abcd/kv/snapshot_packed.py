"""The packed snapshot format (version 3): made for loading in one pass, not for reading.

Integers little-endian::

    magic "ABCD-KV\\0" | version u32 (3) | meta length u32 | meta (UTF-8 JSON object)
    then seven sections, each: length u64 | bytes
      keys              JSON array of the keys, in strictly increasing order
      values            JSON array of every version's value (key by key, oldest first)
      counts            an unsigned integer per key: how many versions it holds (>= 1)
      create_revisions  an unsigned integer per version
      mod_revisions     an unsigned integer per version
      versions          an unsigned integer per version (0: a tombstone)
      leases            an unsigned integer per version

The meta holds the rest as version 2 writes it (kv/snapshot.py): "applied_index",
"revision", "compact_revision", "last_lease_id", "leases", "events" (an event is [key,
i, j] into the version lists, or written in full), "sessions", "auth"; "keys" and
"versions", the counts of both, checked against the sections; and "widths", the bytes
per integer of each integer section in order (1, 2, 4 or 8: the fewest that hold its
largest number, so that a million keys of one version each take 11 bytes per key in
them, not 40).

Why this shape: a restart loads a million keys.  A JSON array of strings is parsed in
C into the str objects the store keeps; an int64 column is one `array.frombytes`; and
`zip` over the columns makes the store's KV tuples (key, value, create_revision,
mod_revision, version, lease) without Python code per key (mvcc_capture.load_v3).
Loading version 2's nested arrays took one Python call per key and its versions.  The
bytes are not checked here: the file holding them (storage/snapshot.py) and a backup
(storage/backup.py) each carry a checksum.  Each length is checked, so truncated data
is refused saying where it ends.
"""
from __future__ import annotations

import json
import struct
import sys
from array import array
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Callable

from .errors import SnapshotError
from .mvcc import CREATE_REVISION, LEASE, MOD_REVISION, VALUE, VERSION
from .mvcc_capture import CapturedEvents, CapturedVersions

MAGIC = b"ABCD-KV\0"
VERSION_PACKED = 3
_PREFIX = struct.Struct("<8sII")  # magic, version, meta length
_LENGTH = struct.Struct("<Q")
SECTIONS = ("keys", "values", "counts", "create_revisions", "mod_revisions", "versions", "leases")
# Keys per slice when encoding: the encoder may pause between slices (a thread that
# shares the interpreter lock with the event loop hands it back that often).
SLICE = 1024
_BIG_ENDIAN = sys.byteorder == "big"

# An array typecode of each width, for unsigned integers.
_TYPECODES = {array(code).itemsize: code for code in "QLIHB"}

_FIELDS = (itemgetter(CREATE_REVISION), itemgetter(MOD_REVISION), itemgetter(VERSION), itemgetter(LEASE))
_VALUE = itemgetter(VALUE)

Dumps = Callable[[object], bytes]
Loads = Callable[[bytes | memoryview], object]


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads_json(data: bytes | memoryview) -> object:
    return json.loads(bytes(data) if isinstance(data, memoryview) else data)


@dataclass(frozen=True, slots=True)
class Columns:
    """The version lists of a packed snapshot, column by column."""

    keys: list
    values: list
    counts: array
    create_revisions: array
    mod_revisions: array
    versions: array
    leases: array


def is_packed(data: bytes | memoryview) -> bool:
    return bytes(data[: len(MAGIC)]) == MAGIC


def encode_parts(state: dict, *, dumps: Dumps = _dumps, pause: Callable[[], None] | None = None) -> list[bytes]:
    """A capture (KVStore.capture) in the packed format, as pieces to join.

    `dumps` turns a list of str into JSON bytes (any encoder that writes compact UTF-8
    JSON gives the same bytes); `pause()`, if given, runs after each slice of keys.
    """
    captured = state["versions"]
    if not isinstance(captured, CapturedVersions):
        raise TypeError("encode_parts takes a capture (KVStore.capture), not a parsed snapshot")
    keys = captured.keys
    key_parts: list[bytes] = []
    value_parts: list[bytes] = []
    counts = array("Q")
    ints = [array("Q") for _ in _FIELDS]
    for start in range(0, len(keys), SLICE):
        lists = captured.lists(start, start + SLICE)
        flat = list(chain.from_iterable(lists))
        key_parts.append(dumps(keys[start : start + SLICE])[1:-1])
        value_parts.append(dumps(list(map(_VALUE, flat)))[1:-1])
        counts.extend(map(len, lists))
        for column, field in zip(ints, _FIELDS):
            column.extend(map(field, flat))
        if pause is not None:
            pause()
    meta = {name: value for name, value in state.items() if name not in ("format", "version", "versions")}
    events = meta["events"]
    if isinstance(events, CapturedEvents):
        meta["events"] = events.to_list()
    meta["keys"] = len(keys)
    meta["versions"] = len(ints[0])
    columns = [_narrowest(column) for column in (counts, *ints)]
    meta["widths"] = [column.itemsize for column in columns]
    meta_bytes = dumps(meta)
    parts = [_PREFIX.pack(MAGIC, VERSION_PACKED, len(meta_bytes)), meta_bytes]
    for section in (_json_array(key_parts), _json_array(value_parts)):
        parts.append(_LENGTH.pack(sum(map(len, section))))
        parts.extend(section)
    for column in columns:
        if _BIG_ENDIAN:
            column.byteswap()
        parts.append(_LENGTH.pack(len(column) * column.itemsize))
        parts.append(column.tobytes())
    return parts


def _narrowest(column: array) -> array:
    """`column` in the narrowest unsigned typecode that holds its largest number."""
    largest = max(column, default=0)
    for width in (1, 2, 4):
        if largest < 1 << (8 * width):
            return array(_TYPECODES[width], column)
    return column


def _json_array(items: list[bytes]) -> list[bytes]:
    """The pieces of one JSON array made of the insides of several."""
    parts = [b"["]
    for i, item in enumerate(items):
        if i:
            parts.append(b",")
        parts.append(item)
    parts.append(b"]")
    return parts


def decode(data: bytes | memoryview, *, loads: Loads = loads_json) -> dict:
    """The meta and the columns (under "columns") of packed snapshot bytes, for
    kv/snapshot.decode; SnapshotError says what is wrong with them.  `loads` parses
    JSON (from bytes or a memoryview)."""
    view = memoryview(data).cast("B")
    if len(view) < _PREFIX.size:
        raise SnapshotError(f"packed snapshot is truncated: {len(view)} bytes, less than its {_PREFIX.size}-byte prefix")
    magic, version, meta_length = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise SnapshotError("snapshot is not an abcd-kv snapshot")
    if version != VERSION_PACKED:
        raise SnapshotError(f"packed snapshot format version {version} is not supported (this abcd reads {VERSION_PACKED})")
    offset = _PREFIX.size
    meta = _parse(loads, _take(view, offset, meta_length, "meta"), "meta")
    offset += meta_length
    if type(meta) is not dict:
        raise SnapshotError("packed snapshot: its meta is not a JSON object")
    sections = {}
    for name in SECTIONS:
        (length,) = _LENGTH.unpack(_take(view, offset, _LENGTH.size, f"the length of {name}"))
        offset += _LENGTH.size
        sections[name] = _take(view, offset, length, name)
        offset += length
    if offset != len(view):
        raise SnapshotError(f"packed snapshot: {len(view) - offset} bytes follow its last section")
    keys = _parse(loads, sections["keys"], "keys")
    values = _parse(loads, sections["values"], "values")
    if type(keys) is not list or type(values) is not list:
        raise SnapshotError("packed snapshot: its keys and values must be JSON arrays")
    widths = meta.get("widths")
    if type(widths) is not list or len(widths) != len(SECTIONS) - 2 or not all(w in _TYPECODES for w in widths):
        raise SnapshotError(f"packed snapshot: its meta's widths are not 5 of 1, 2, 4 and 8: {widths!r:.100}")
    ints = []
    for name, width in zip(SECTIONS[2:], widths):
        raw = sections[name]
        if len(raw) % width:
            raise SnapshotError(f"packed snapshot: section {name} is {len(raw)} bytes, not a whole number of {width}")
        column = array(_TYPECODES[width])
        column.frombytes(raw)
        if _BIG_ENDIAN:
            column.byteswap()
        ints.append(column)
    if meta.get("keys") != len(keys) or meta.get("versions") != len(values):
        raise SnapshotError(
            f"packed snapshot: its meta announces {meta.get('keys')!r} keys and {meta.get('versions')!r} versions, "
            f"its sections hold {len(keys)} and {len(values)}"
        )
    state = {name: value for name, value in meta.items() if name not in ("keys", "versions", "widths")}
    state["columns"] = Columns(keys, values, *ints)
    return state


def _take(view: memoryview, offset: int, length: int, what: str) -> memoryview:
    if offset + length > len(view):
        raise SnapshotError(
            f"packed snapshot is truncated: {what} needs {length} bytes at offset {offset}, the data ends at {len(view)}"
        )
    return view[offset : offset + length]


def _parse(loads: Loads, data: memoryview, what: str) -> object:
    try:
        return loads(data)
    except ValueError as error:  # json's and orjson's decode errors are ValueErrors
        raise SnapshotError(f"packed snapshot: section {what} is not valid JSON: {error}") from None
