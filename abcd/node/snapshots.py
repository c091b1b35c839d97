"""Snapshots of a running node: taking them, sending them, installing them, starting from them.

`Snapshotter` is what the node holds: it keeps the node's newest snapshot, which every
part reads, and hands the rest to one module per concern:

- snapshot_format.py: what a snapshot is in memory, on the wire and in its file;
- snapshot_taking.py: taking one every `snapshot_count` applied entries (§7 of the
  Raft paper), and compacting the core's log and the WAL behind it;
- snapshot_install.py: screening, saving and installing a leader's snapshot;
- snapshot_recovery.py: starting from the newest snapshot file and the WAL after it;
- snapshot_worker.py: the one worker thread that does every snapshot file operation.

Sending (here, `fill`).  The core asks for a snapshot with an InstallSnapshotRequest
whose data is empty (it never holds state-machine bytes); `fill` puts the node's
newest snapshot in it as it leaves: index, term, configuration and data (which
snapshot_sender.py then streams in chunks, and snapshot_receiver.py reassembles).  The newest
snapshot is always at or after the start of the core's log, because the core's log is
only ever compacted behind it or replaced by it.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import loguru

from ..kv import KVStore
from ..raft.effects import Persist, Restore
from ..raft.messages import InstallSnapshotRequest, Message
from .membership import Membership
from .snapshot_format import NodeSnapshot, decode_wire
from .snapshot_install import SnapshotInstalling
from .snapshot_recovery import newest_file, recover
from .snapshot_taking import SnapshotTaking
from .snapshot_worker import KEEP_SNAPSHOTS, KEEP_WAL_SEGMENTS, Runner, Worker, thread_runner

__all__ = ["Snapshotter", "NodeSnapshot", "newest_file", "recover", "thread_runner"]

OnEvent = Callable[[str, dict], None]


class Snapshotter:
    """Takes, sends, screens and installs the snapshots of one node (module docstring)."""

    def __init__(
        self,
        *,
        data_dir: str,
        snapshot_count: int,
        catchup_entries: int,
        view,
        compact_log: Callable[[int, int], None],
        store: KVStore,
        membership: Membership,
        wal,
        run: Runner,
        newest: NodeSnapshot | None = None,
        logger=loguru.logger,
        on_event: OnEvent = lambda name, fields: None,
        clock: Callable[[], float] = time.perf_counter,
        fork: bool = True,
        defer: Callable[[Callable[[], None]], None] | None = None,
        max_snapshots: int = KEEP_SNAPSHOTS,
        max_wals: int = KEEP_WAL_SEGMENTS,
    ) -> None:
        if snapshot_count < 0 or catchup_entries < 0 or max_snapshots < 0 or max_wals < 0:
            raise ValueError("snapshot_count, catchup_entries, max_snapshots and max_wals must be >= 0")
        self.newest = newest
        self._worker = Worker(run)
        self._logger = logger
        self._on_event = on_event
        self.taking = SnapshotTaking(
            data_dir=data_dir,
            snapshot_count=snapshot_count,
            catchup_entries=catchup_entries,
            view=view,
            compact_log=compact_log,
            store=store,
            membership=membership,
            wal=wal,
            submit=self._worker.submit,
            newest=self._newest,
            keep=self._keep,
            logger=logger,
            on_event=on_event,
            clock=clock,
            fork=fork,
            defer=defer,
            max_snapshots=max_snapshots,
            max_wals=max_wals,
        )
        self.installing = SnapshotInstalling(
            data_dir=data_dir,
            view=view,
            store=store,
            submit=self._worker.submit,
            compact_wal=self.taking.compact_wal,
            newest=self._newest,
            keep=self._keep,
            logger=logger,
            on_event=on_event,
            max_snapshots=max_snapshots,
        )
        # Statistics for /metrics (the parts keep their own: see the properties below).
        self.sent = 0

    def _newest(self) -> NodeSnapshot | None:
        return self.newest

    def _keep(self, snapshot: NodeSnapshot) -> None:
        self.newest = snapshot

    @property
    def newest_index(self) -> int:
        return self.newest.index if self.newest is not None else 0

    # Statistics and state of the parts, under the names /metrics and tests read.
    taken = property(lambda self: self.taking.taken)
    take_seconds = property(lambda self: self.taking.take_seconds)
    failures = property(lambda self: self.taking.failures)
    in_progress = property(lambda self: self.taking.in_progress)
    fork = property(lambda self: self.taking.fork)
    installed = property(lambda self: self.installing.installed)
    refused = property(lambda self: self.installing.refused)

    def close(self) -> None:
        """The node is stopping: a snapshot finishing now is kept, but compacts nothing."""
        self.taking.closed = True
        self.installing.closed = True

    async def wait_idle(self) -> None:
        """Until no worker-thread job is in flight."""
        await self._worker.wait_idle()

    # ------------------------------------------------------------------ taking

    def on_record(self, record) -> None:
        """After the applier: take a snapshot once enough entries were applied."""
        self.installing.on_record(record)
        self.taking.on_record(record)

    def take(self) -> bool:
        """Start taking a snapshot at the applied index; False if there is nothing new."""
        return self.taking.take()

    # ------------------------------------------------------------------ sending

    def fill(self, message: InstallSnapshotRequest) -> InstallSnapshotRequest | None:
        """The core's request with the newest snapshot in it; None (drop it) if there is
        no snapshot at or after the one it names (the core sends again)."""
        newest = self.newest
        if newest is None or newest.index < message.last_included_index:
            self._logger.warning(
                "dropping an InstallSnapshotRequest to node {} for index {}: this node holds no snapshot "
                "at or after it (newest: {})",
                message.dest, message.last_included_index, newest.index if newest else "none",
            )
            return None
        self.sent += 1
        self._on_event(
            "SnapshotSent",
            {"to": message.dest, "index": newest.index, "snapshot_term": newest.term, "bytes": len(newest.data)},
        )
        return replace(
            message,
            last_included_index=newest.index,
            last_included_term=newest.term,
            voters=newest.voters,
            learners=newest.learners,
            data=newest.data,
        )

    # ------------------------------------------------------------------ installing

    def screen(self, peer: int, messages: list[Message]) -> list[Message]:
        """Check each InstallSnapshotRequest of a frame before the core sees it; drop the
        ones whose snapshot is malformed (the node keeps its state)."""
        return self.installing.screen(peer, messages)

    def members_of(self, restore: Restore) -> str | None:
        """The member table context a Restore's snapshot carries."""
        return decode_wire(restore.data)[0]

    def store_for(self, restore: Restore) -> KVStore:
        """The new store for a Restore: the one `screen` prepared, else loaded now."""
        return self.installing.store_for(restore)

    def on_restored(self, restore: Restore) -> None:
        """The applier restored the store: this is now the node's newest snapshot."""
        s = restore.snapshot
        self.newest = NodeSnapshot(
            s.last_included_index, s.last_included_term, frozenset(s.voters), frozenset(s.learners),
            self.members_of(restore), restore.data,
        )
        self.taking.retry_from = 0

    def save_installed(self, persist: Persist, done: Callable[[BaseException | None], None]) -> None:
        """The WAL sink's snapshot writer: save a Persist's snapshot durably, in the
        worker thread, then done(error) on the loop."""
        self.installing.save_installed(persist, done)

    def on_install_durable(self, persist: Persist) -> None:
        """The WAL sink: a Persist that installed a snapshot is durable (file, LOG_RESET)."""
        self.installing.on_install_durable(persist)
