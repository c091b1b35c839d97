"""Starting a node from its newest snapshot and the WAL after it.

The newest intact snapshot file is loaded into the store, the core is built on it and
on the WAL entries after it, and the member table starts from its meta.  Damage is an
error naming the file, never a silent fall-back that could lose committed entries.
"""
from __future__ import annotations

from typing import Any

import loguru

from ..kv import KVStore, SnapshotError
from ..raft.messages import Entry
from ..storage import LoadedSnapshot, StorageError, load_latest_snapshot
from ..storage.recovery import Recovered
from .snapshot_format import NodeSnapshot, encode_wire, load_store


def newest_file(data_dir: str, logger=loguru.logger) -> LoadedSnapshot | None:
    """The newest intact snapshot file (read and checked), logging those passed over.

    The node reads it before the WAL, so that the WAL does not decode the entries it
    covers (WAL.open's `covered`).  StorageError if files exist but none is intact."""
    loaded = load_latest_snapshot(data_dir)
    if loaded is not None:
        for reason in loaded.skipped:
            logger.warning("passed over a snapshot file: {}", reason)
    return loaded


_READ_NOW: Any = object()


def recover(
    data_dir: str, recovered: Recovered, store: KVStore, logger=loguru.logger, *, loaded: Any = _READ_NOW
) -> tuple[NodeSnapshot | None, list[Entry]]:
    """Load the newest intact snapshot into `store` (`loaded`, read by newest_file,
    else read now); (it, the WAL entries after it).

    Raises StorageError naming the file when a snapshot cannot be used, or when the WAL
    does not continue where the snapshot ends (the files passed over are listed too).
    """
    if loaded is _READ_NOW:
        loaded = newest_file(data_dir, logger)
    if loaded is None:
        return None, recovered.entries_after(0)
    raft = loaded.raft_snapshot()
    members = loaded.meta.get("members")
    if members is not None and type(members) is not str:
        raise StorageError(f"{loaded.path}: meta.members must be a string (a member table) or null")
    try:
        restored = load_store(store, loaded.data)
    except SnapshotError as error:
        raise StorageError(f"{loaded.path}: {error}; refusing to start (committed data could be lost)") from None
    if restored.applied_index != loaded.index:
        raise StorageError(
            f"{loaded.path}: named for index {loaded.index}, but its state machine is at index "
            f"{restored.applied_index}; refusing to start"
        )
    try:
        entries = recovered.entries_after(loaded.index)
    except StorageError as error:
        passed_over = f" (passed over: {'; '.join(loaded.skipped)})" if loaded.skipped else ""
        raise StorageError(f"starting from {loaded.path}: {error}{passed_over}") from None
    first = recovered.first_index
    if first <= loaded.index <= recovered.last_index and recovered.entries[loaded.index - first].term != loaded.term:
        # A snapshot from the leader is saved before the WAL records that the log starts
        # after it; a crash in between leaves the old log, which conflicts with the
        # snapshot at its index.  Figure 13 step 7: discard it all.
        logger.warning(
            "{}: the WAL's entry {} is of term {}, not the snapshot's term {}: discarding the WAL's "
            "{} entries after it (a snapshot installed from the leader just before a crash)",
            loaded.path, loaded.index, recovered.entries[loaded.index - first].term, loaded.term, len(entries),
        )
        entries = []
    store.replace_state(restored)
    snapshot = NodeSnapshot(
        loaded.index, loaded.term, raft.voters, raft.learners, members, encode_wire(members, loaded.data), loaded.path
    )
    return snapshot, entries
