"""State-machine snapshots: `<data-dir>/snap/<term>-<index>.snap`.

File format (integers little-endian)::

    magic "ABCDSNAP" | version u16 | reserved u16 | crc32 u32 |
    term u64 | index u64 | meta length u32 | data length u64 |   (the header, 44 bytes)
    meta (UTF-8 JSON object) | data

The CRC covers everything after the crc field: the rest of the header, the meta and
the data, so a damaged length or index is caught like damaged data.  Files are
written atomically (temp file, fsync, rename, fsync the directory), so a crash never
leaves a half-written .snap; a .snap that fails its checks was damaged at rest.
"""
from __future__ import annotations

import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..raft.messages import Snapshot
from .errors import StorageError
from .files import atomic_write, ensure_dir, fsync_dir

SNAP_DIRNAME = "snap"
MAGIC = b"ABCDSNAP"
VERSION = 1
_HEADER = struct.Struct("<8sHHIQQIQ")
_CRC_COVERED = struct.Struct("<QQIQ")  # term, index, meta length, data length
_NAME = re.compile(r"^(\d{20})-(\d{20})\.snap$")


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    term: int
    index: int
    meta: dict[str, Any]
    data: bytes
    path: str
    # Newer snapshot files that were passed over, each with the reason.
    skipped: tuple[str, ...] = field(default=())

    def raft_snapshot(self) -> Snapshot:
        """The Raft core's view: last included index/term and the configuration."""
        try:
            voters = frozenset(int(v) for v in self.meta["voters"])
            learners = frozenset(int(v) for v in self.meta.get("learners", ()))
        except (KeyError, TypeError, ValueError) as e:
            raise StorageError(f"{self.path}: meta has no valid voters/learners lists ({e!r})") from None
        return Snapshot(self.index, self.term, voters, learners)


def snapshot_name(term: int, index: int) -> str:
    return f"{term:020d}-{index:020d}.snap"


def save_snapshot(
    data_dir: str | os.PathLike, term: int, index: int, data: bytes | memoryview, meta: dict
) -> str:
    """Write a snapshot durably and atomically; returns its path.

    `meta` is a JSON object; it should hold the configuration ("voters", "learners")
    as of `index`.  Sets and frozensets in it are written as sorted lists.  `data` may
    be a memoryview (part of a larger buffer): it is written without being copied.
    """
    for name, value in (("term", term), ("index", index)):
        if type(value) is not int or not 0 <= value < 2**64:
            raise ValueError(f"snapshot {name} must be an int in [0, 2**64), not {value!r}")
    if not isinstance(meta, dict):
        raise TypeError(f"snapshot meta must be a dict, not {type(meta).__name__}")
    try:
        meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"), default=_jsonable).encode()
    except (TypeError, ValueError) as e:
        raise StorageError(f"snapshot meta is not JSON-serialisable: {e}") from None
    data = memoryview(data).cast("B")  # any bytes-like object, counted in bytes, not copied
    covered = _CRC_COVERED.pack(term, index, len(meta_bytes), len(data))
    crc = zlib.crc32(data, zlib.crc32(meta_bytes, zlib.crc32(covered)))
    header = _HEADER.pack(MAGIC, VERSION, 0, crc, term, index, len(meta_bytes), len(data))
    snap_dir = os.path.join(os.fspath(data_dir), SNAP_DIRNAME)
    ensure_dir(snap_dir)
    path = os.path.join(snap_dir, snapshot_name(term, index))
    atomic_write(path, (header, meta_bytes, data))
    return path


def load_latest_snapshot(data_dir: str | os.PathLike) -> LoadedSnapshot | None:
    """The newest snapshot that passes its checks, or None if there is no snapshot.

    Damaged or misnamed files are passed over and listed in `skipped`.  If snapshot
    files exist but none is intact, raises StorageError: the WAL may already have been
    compacted on the strength of them, so starting empty could lose committed data.
    """
    snap_dir = os.path.join(os.fspath(data_dir), SNAP_DIRNAME)
    skipped: list[str] = []
    for path, term, index in _snapshot_files(snap_dir, skipped):
        try:
            return _read(path, term, index, tuple(skipped))
        except _BadSnapshot as e:
            skipped.append(f"{path}: {e}")
    if skipped:
        raise StorageError("no intact snapshot to start from; " + "; ".join(skipped))
    return None


def read_snapshot(data_dir: str | os.PathLike, term: int, index: int) -> LoadedSnapshot:
    """The snapshot file of `term` and `index`, checked; StorageError naming it if it
    is missing or fails a check."""
    path = os.path.join(os.fspath(data_dir), SNAP_DIRNAME, snapshot_name(term, index))
    try:
        return _read(path, term, index, ())
    except _BadSnapshot as e:
        raise StorageError(f"{path}: {e}") from None


def prune_snapshots(data_dir: str | os.PathLike, keep: int = 2) -> list[str]:
    """Delete all but the `keep` newest snapshot files (and stale temp files).

    Returns the deleted paths.
    """
    if type(keep) is not int or keep < 1:
        raise ValueError(f"keep must be an int >= 1, not {keep!r}")
    snap_dir = os.path.join(os.fspath(data_dir), SNAP_DIRNAME)
    if not os.path.isdir(snap_dir):
        return []
    doomed = [path for path, _, _ in _snapshot_files(snap_dir, [])][keep:]
    doomed += [os.path.join(snap_dir, n) for n in os.listdir(snap_dir) if n.startswith(".") and n.endswith(".tmp")]
    for path in doomed:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    if doomed:
        fsync_dir(snap_dir)
    return doomed


# --------------------------------------------------------------------------- internals


class _BadSnapshot(Exception):
    pass


def _snapshot_files(snap_dir: str, skipped: list[str]) -> list[tuple[str, int, int]]:
    """(path, term, index) of every well-named .snap, newest (highest index) first."""
    if not os.path.isdir(snap_dir):
        return []
    found = []
    for name in os.listdir(snap_dir):
        if not name.endswith(".snap"):
            continue
        path = os.path.join(snap_dir, name)
        match = _NAME.match(name)
        if match is None:
            skipped.append(f"{path}: not named <term>-<index>.snap with 20-digit numbers")
            continue
        found.append((path, int(match.group(1)), int(match.group(2))))
    found.sort(key=lambda f: (f[2], f[1]), reverse=True)
    return found


def _read(path: str, term: int, index: int, skipped: tuple[str, ...]) -> LoadedSnapshot:
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise _BadSnapshot(f"cannot read: {e}") from None
    if len(blob) < _HEADER.size:
        raise _BadSnapshot(f"{len(blob)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, _reserved, crc, h_term, h_index, meta_len, data_len = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise _BadSnapshot(f"bad magic {magic!r} (not an abcd snapshot)")
    if version != VERSION:
        raise _BadSnapshot(f"format version {version}, this abcd reads version {VERSION}")
    if _HEADER.size + meta_len + data_len != len(blob):
        raise _BadSnapshot(f"header says {meta_len}+{data_len} body bytes, file has {len(blob) - _HEADER.size}")
    body = memoryview(blob)[_HEADER.size :]
    covered = _CRC_COVERED.pack(h_term, h_index, meta_len, data_len)
    if zlib.crc32(body, zlib.crc32(covered)) != crc:
        raise _BadSnapshot("fails its CRC check")
    if (h_term, h_index) != (term, index):
        raise _BadSnapshot(f"header says term {h_term} index {h_index}, unlike its name")
    try:
        meta = json.loads(bytes(body[:meta_len]))
    except ValueError as e:
        raise _BadSnapshot(f"meta is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise _BadSnapshot("meta is not a JSON object")
    return LoadedSnapshot(term, index, meta, bytes(body[meta_len:]), path, skipped)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")
