"""Installing a leader's snapshot on a follower.

A follower screens each InstallSnapshotRequest as it arrives (`screen`): the header,
and the whole KV document loaded into a new store, are checked before the core sees
the message; a malformed one is dropped with an error naming the sender and what is
wrong, and the node keeps its state (the leader resends after an election timeout).
The core then answers with Persist(snapshot=...) and Restore in one step: the WAL sink
saves the snapshot through `save_installed` (in the worker thread) before it writes
the WAL's LOG_RESET, and the applier swaps the store prepared here into the live one
(`store_for`).  Once that Persist is durable, `on_install_durable` compacts the WAL.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import loguru

from ..kv import KVStore, SnapshotError
from ..raft.effects import Persist, Restore
from ..raft.messages import InstallSnapshotRequest, Message
from ..storage import save_snapshot
from .membership import check_context
from .snapshot_format import NodeSnapshot, SnapshotDataError, decode_wire, load_store
from .snapshot_worker import Done, prune

OnEvent = Callable[[str, dict], None]


@dataclass(slots=True)
class _Prepared:
    """A screened InstallSnapshotRequest's state, loaded before the core saw it."""

    data: bytes
    store: KVStore
    index: int


class SnapshotInstalling:
    """Screens, prepares, saves and installs the snapshots a leader sends this node."""

    def __init__(
        self,
        *,
        data_dir: str,
        view,
        store: KVStore,
        submit: Callable[[Callable[[], Any], Done], None],
        compact_wal: Callable[[int], int],
        newest: Callable[[], NodeSnapshot | None],
        keep: Callable[[NodeSnapshot], None],
        logger=loguru.logger,
        on_event: OnEvent = lambda name, fields: None,
        max_snapshots: int,
    ) -> None:
        self._data_dir = data_dir
        self._view = view  # the node's CoreView: the core as the step records describe it
        self._store = store
        self._submit = submit
        self._compact_wal = compact_wal
        self._newest = newest  # the node's newest snapshot (the coordinator holds it)
        self._keep = keep  # make a snapshot the node's newest
        self._logger = logger
        self._on_event = on_event
        self.max_snapshots = max_snapshots
        self._prepared: _Prepared | None = None
        self.closed = False  # the node is stopping: compact nothing more
        # Statistics for /metrics.
        self.installed = 0
        self.refused = 0

    def on_record(self, record) -> None:
        """After the applier: forget a prepared store once its index is committed."""
        prepared = self._prepared
        if prepared is not None and prepared.index <= record.soft.commit_index:
            self._prepared = None  # installed (the applier took it) or no longer needed

    def screen(self, peer: int, messages: list[Message]) -> list[Message]:
        """Check each InstallSnapshotRequest of a frame before the core sees it; drop the
        ones whose snapshot is malformed (the node keeps its state)."""
        kept = []
        for message in messages:
            if type(message) is not InstallSnapshotRequest or self._prepare(peer, message):
                kept.append(message)
        return kept

    def _prepare(self, peer: int, m: InstallSnapshotRequest) -> bool:
        view = self._view
        if (
            m.term < view.current_term
            or m.last_included_index <= view.commit_index
            or view.log_matches(m.last_included_index, m.last_included_term)
        ):
            return True  # the core answers it without installing anything (stale, or our log has it)
        try:
            members, kv = decode_wire(m.data)
            if members is not None:
                check_context(members)
            store = load_store(self._store, kv)
            if store.applied_index != m.last_included_index:
                raise SnapshotDataError(
                    f"its state machine is at index {store.applied_index}, not at last_included_index"
                )
        except (SnapshotError, ValueError) as error:  # SnapshotDataError is a ValueError
            self.refused += 1
            self._logger.error(
                "refusing an InstallSnapshotRequest from node {} for index {} ({} bytes): {}; keeping this node's state",
                peer, m.last_included_index, len(m.data), error,
            )
            return False
        self._prepared = _Prepared(m.data, store, m.last_included_index)
        return True

    def store_for(self, restore: Restore) -> KVStore:
        """The new store for a Restore: the one `screen` prepared, else loaded now."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.data is restore.data:
            return prepared.store
        index = restore.snapshot.last_included_index
        store = load_store(self._store, decode_wire(restore.data)[1])
        if store.applied_index != index:
            raise SnapshotDataError(f"the snapshot for index {index} holds a state machine at index {store.applied_index}")
        return store

    def save_installed(self, persist: Persist, done: Callable[[BaseException | None], None]) -> None:
        """The WAL sink's snapshot writer: save a Persist's snapshot durably, in the
        worker thread, then done(error) on the loop."""
        s = persist.snapshot
        data, data_dir, keep = persist.snapshot_data, self._data_dir, self.max_snapshots

        def job() -> str:
            members, kv = decode_wire(data)  # kv: a view into `data`, saved without a copy
            meta = {"voters": sorted(s.voters), "learners": sorted(s.learners), "members": members}
            path = save_snapshot(data_dir, s.last_included_term, s.last_included_index, kv, meta)
            prune(data_dir, keep)
            return path

        def saved(path: Any, error: BaseException | None) -> None:
            if error is None:
                newest = self._newest()
                if newest is not None and newest.index == s.last_included_index and newest.path is None:
                    self._keep(replace(newest, path=path))
            done(error)

        self._submit(job, saved)

    def on_install_durable(self, persist: Persist) -> None:
        """The WAL sink: a Persist that installed a snapshot is durable (file, LOG_RESET)."""
        s = persist.snapshot
        self.installed += 1
        segments = 0 if self.closed else self._compact_wal(s.last_included_index)
        self._on_event(
            "SnapshotInstalled",
            {
                "index": s.last_included_index,
                "snapshot_term": s.last_included_term,
                "bytes": len(persist.snapshot_data),
                "wal_segments_removed": segments,
            },
        )
