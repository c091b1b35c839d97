"""Durable storage of a node: the write-ahead log, snapshots and meta.json.

Layout of a data directory (docs/storage.md)::

    <data-dir>/meta.json                 node id, cluster id
    <data-dir>/wal/<first-index>.wal     WAL segments
    <data-dir>/snap/<term>-<index>.snap  state-machine snapshots
"""
from .errors import CorruptWALError, StorageError
from .meta import read_meta, write_meta
from .recovery import Recovered
from .snapshot import LoadedSnapshot, load_latest_snapshot, prune_snapshots, read_snapshot, save_snapshot
from .wal import DEFAULT_SEGMENT_BYTES, WAL

__all__ = [
    "CorruptWALError",
    "DEFAULT_SEGMENT_BYTES",
    "LoadedSnapshot",
    "Recovered",
    "StorageError",
    "WAL",
    "load_latest_snapshot",
    "prune_snapshots",
    "read_snapshot",
    "read_meta",
    "save_snapshot",
    "write_meta",
]
