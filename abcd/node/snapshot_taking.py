"""Taking snapshots (§7 of the Raft paper), and compacting behind them.

Once `snapshot_count` entries were applied since the newest snapshot, and none is
being taken, `on_record` (a sink after the applier) forks a child process on the
event loop (snapshot_child.py): its copy-on-write image of the process is the store
exactly at the applied index, and it encodes that (the packed format:
kv/snapshot_packed.py) and saves it durably as `snap/<term>-<index>.snap`, with the configuration as of that index in its meta
(voters, learners, and the member table's context: see membership.py), on its own
interpreter lock and at a lower priority than the node.  The worker thread
(snapshot_worker.py) waits for the child, reads the file back (checking it) for
sending, and prunes the older files (the newest `max_snapshots` stay).  Where the node
cannot fork, and after a child has failed, the store is captured on the loop instead
(KVStore.capture copies the containers and shares the immutable KVs, so later
writes cannot change the capture) and the worker thread encodes it in slices
(`encode_state`: one call over a big store would hold the GIL, and so stall the loop,
for the whole encoding) and saves it.  Back on the loop, in its own callback and so
between pipeline steps, the node remembers it as its newest snapshot and compacts: the
WAL segments that hold nothing after `index - catchup_entries` (entries kept so that a
follower a little behind still gets AppendEntries rather than a whole snapshot), at
once; and the core's log up to that point, never behind its start, `COMPACT_STEP`
entries per loop turn (freeing them all at once stalled the loop), each step of it a
SnapshotTaken event stepped through the pipeline like any other change of the core.
A failed attempt is logged and retried after another `snapshot_count` entries; the
WAL still holds everything meanwhile.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import loguru

from ..kv import KVStore
from ..storage import StorageError, read_snapshot, save_snapshot
from . import snapshot_child
from .membership import Membership
from .snapshot_format import NodeSnapshot, encode_state, encode_state_parts, encode_wire, wire_header
from .snapshot_worker import Done, prune

# Entries dropped from the core's log per loop turn when it is compacted behind a new
# snapshot.  Freeing 100,000 entries in one call held the loop for 30-100 ms (each
# entry and its command are freed, a page fault apiece after the fork), which was the
# writes' p99 at c=256; a step this size takes a few milliseconds.
COMPACT_STEP = 4096

OnEvent = Callable[[str, dict], None]


class SnapshotTaking:
    """Takes the snapshots of one node and compacts its log and WAL behind them."""

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
        submit: Callable[[Callable[[], Any], Done], None],
        newest: Callable[[], NodeSnapshot | None],
        keep: Callable[[NodeSnapshot], None],
        logger=loguru.logger,
        on_event: OnEvent = lambda name, fields: None,
        clock: Callable[[], float] = time.perf_counter,
        fork: bool = True,
        defer: Callable[[Callable[[], None]], None] | None = None,
        max_snapshots: int,
        max_wals: int,
    ) -> None:
        self._data_dir = data_dir
        # Retention (docs/storage.md): snapshot files kept, and WAL segments kept even
        # when a snapshot covers them; 0 keeps every one.
        self.max_snapshots = max_snapshots
        self.max_wals = max_wals
        self.snapshot_count = snapshot_count
        self.catchup_entries = catchup_entries
        # The node's CoreView: the core as the step records describe it, and its log's
        # terms (read-only).  The core's log is compacted only by stepping SnapshotTaken:
        # compact_log(snapshot index, compact to) pushes one into the pipeline.
        self._view = view
        self._compact_log = compact_log
        self._compact_snapshot = 0  # the snapshot's index behind which the log is compacted
        self._compacted_to = 0  # the last compact_to pushed (the view learns it a step later)
        self._store = store
        self._membership = membership
        self._wal = wal
        self._submit = submit
        self._newest = newest  # the node's newest snapshot (the coordinator holds it)
        self._keep = keep  # make a snapshot just taken the node's newest
        self._logger = logger
        self._on_event = on_event
        self._clock = clock
        # Write taken snapshots in a forked child (snapshot_child.py) where the
        # platform can; False: in the worker thread.
        self.fork = fork
        # defer(fn): run fn later, between pipeline steps (the node: loop.call_soon); the
        # core's log is then compacted COMPACT_STEP entries at a time.  None: at once.
        self._defer = defer
        self._compact_target = 0  # where the core's log is being compacted to
        self._compacting = False  # a compaction step is deferred
        self.in_progress = False  # a snapshot is being taken
        self.retry_from = 0  # after a failed attempt: the applied index to try again at
        self.closed = False  # the node is stopping: compact nothing more
        # Statistics for /metrics.
        self.taken = 0
        self.take_seconds = 0.0
        self.failures = 0

    @property
    def newest_index(self) -> int:
        newest = self._newest()
        return newest.index if newest is not None else 0

    def on_record(self, record) -> None:
        """After the applier: take a snapshot once enough entries were applied."""
        if not self.snapshot_count or self.in_progress or self.closed:
            return
        applied = self._store.applied_index
        if applied - self.newest_index >= self.snapshot_count and applied >= self.retry_from:
            self.take()

    def take(self) -> bool:
        """Start taking a snapshot at the applied index; False if there is nothing new."""
        view, store = self._view, self._store
        index = store.applied_index
        term = view.term_at(index)
        if index <= max(view.log_start, self.newest_index) or term is None:
            return False
        started = self._clock()
        try:
            config = view.config_at(index)
            members = self._membership.context_at(index)
            keys = len(store)
            meta = {"voters": sorted(config.voters), "learners": sorted(config.learners), "members": members}
            job = self._forked_job(index, term, members, meta) if self.fork else None
            if job is None:
                job = self._threaded_job(
                index, term, members, meta, store.capture(), self._data_dir, self.max_snapshots
            )
        except Exception as error:  # a bug; the node goes on without this snapshot
            self._failed(index, started, error)
            return False
        capture_seconds = self._clock() - started

        def done(result: Any, error: BaseException | None) -> None:  # on the loop, between steps
            self.in_progress = False
            if error is not None:
                self._failed(index, started, error)
                return
            path, wire, size, pruned = result
            seconds = self._clock() - started
            self.taken += 1
            self.take_seconds += seconds
            snapshot = NodeSnapshot(index, term, config.voters, config.learners, members, wire, path)
            if index > self.newest_index:  # else a newer snapshot was installed meanwhile
                self._keep(snapshot)
            compacted_to, segments = self._compact(index)
            self._on_event(
                "SnapshotTaken",
                {
                    "index": index,
                    "snapshot_term": term,
                    "bytes": size,
                    "keys": keys,
                    "seconds": round(seconds, 4),
                    "capture_seconds": round(capture_seconds, 4),
                    "log_compacted_to": compacted_to,
                    "wal_segments_removed": segments,
                    "snapshots_removed": len(pruned),
                },
            )

        self.in_progress = True
        self._submit(job, done)
        return True

    def _forked_job(self, index: int, term: int, members: str | None, meta: dict) -> Callable[[], Any] | None:
        """Fork a child that captures, encodes and saves the store as it is now (see
        snapshot_child.py); the job waits for it and reads the file back for sending.
        None if the node cannot fork."""
        store, data_dir, keep = self._store, self._data_dir, self.max_snapshots

        def write() -> None:  # in the child
            kv = encode_state(store.capture(), pause=False)
            save_snapshot(data_dir, term, index, kv, meta)

        child = snapshot_child.start(write)
        if child is None:
            return None

        def job() -> tuple[str, bytes, int, list[str]]:  # in the worker thread
            child.wait()
            loaded = read_snapshot(data_dir, term, index)
            pruned = prune(data_dir, keep)
            return loaded.path, encode_wire(members, loaded.data), len(loaded.data), pruned

        return job

    @staticmethod
    def _threaded_job(
        index: int, term: int, members: str | None, meta: dict, state: dict, data_dir: str, keep: int
    ) -> Callable[[], Any]:
        """Encode and save a capture in the worker thread, sharing the GIL with the loop."""

        def job() -> tuple[str, bytes, int, list[str]]:  # in the worker thread
            # One buffer holds the wire form; the file gets the KV document out of it.
            wire = encode_wire(members, encode_state_parts(state))
            kv = memoryview(wire)[len(wire_header(members)) :]
            path = save_snapshot(data_dir, term, index, kv, meta)
            pruned = prune(data_dir, keep)
            return path, wire, len(kv), pruned

        return job

    def _failed(self, index: int, started: float, error: BaseException) -> None:
        self.failures += 1
        self.take_seconds += self._clock() - started
        self.retry_from = index + max(1, self.snapshot_count)
        how = ""
        if isinstance(error, snapshot_child.SnapshotChildError) and self.fork:
            # A child killed (by the kernel's out-of-memory killer, say: a fork can
            # double the node's memory) would be killed again; the thread needs none.
            self.fork = False
            how = " (in the worker thread, not a forked child)"
        self._logger.opt(exception=error).error(
            "taking a snapshot at index {} failed: {}; the WAL keeps every entry, the next attempt is at index {}{}",
            index, error, self.retry_from, how,
        )

    def _compact(self, index: int) -> tuple[int, int]:
        """Compact the core's log and the WAL behind a durable snapshot at `index`.

        The WAL at once (it only deletes whole files); the core's log from here on, in
        steps (`_compact_log_step`).  Returns where the log is being compacted to, and
        the number of WAL segments deleted."""
        start = self._view.log_start
        target = max(start, index - self.catchup_entries)
        if self.closed:
            return start, 0
        if target > self._compact_target:
            self._compact_target = target
            self._compact_snapshot = index
        if not self._compacting:
            self._compact_log_step()
        # Never past this snapshot: a newer one installed meanwhile may not be durable
        # yet, nor the WAL's record that the log now starts after it.
        return target, self.compact_wal(min(target, index))

    def _compact_log_step(self) -> None:
        """Drop up to COMPACT_STEP entries of the core's log towards `_compact_target`,
        and defer the next step if more are left.  A snapshot installed meanwhile may
        have replaced the log beyond the target: then nothing is left to do."""
        self._compacting = False
        start = max(self._view.log_start, self._compacted_to)
        if self.closed or self._compact_target <= start:
            return
        upto = self._compact_target
        if self._defer is not None:
            upto = min(upto, start + COMPACT_STEP)
        # The member table falls back to the base once no config entry is left.
        self._membership.set_base(self._membership.context_at(upto))
        self._compacted_to = upto
        self._compact_log(self._compact_snapshot, upto)
        if upto < self._compact_target:
            self._compacting = True
            self._defer(self._compact_log_step)

    def compact_wal(self, upto: int) -> int:
        try:
            if not self.max_wals:
                return 0  # keep every segment
            return self._wal.compact(upto, keep=self.max_wals)
        except (StorageError, OSError) as error:
            # Old segments left behind cost disk space, never safety: go on.
            self._logger.error("compacting the WAL up to index {} failed: {}", upto, error)
            return 0
