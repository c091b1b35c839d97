"""The WAL sink: Persist effects written to the WAL, acknowledged after group-commit fsync.

`write(persist)` appends to the WAL at once, on the event loop (the OS buffers it).
Durability comes from `wal.sync()`, run by a SyncRunner: at the end of the loop turn
on a fast disk, in a worker thread on a slow one (AdaptiveSyncRunner).  At most one
fsync is in flight: records written while it runs wait for the next one, which covers
all of them (group commit, performance.md rule 5).  When an fsync
completes, every Persist written before it started is durable, so the sink reports
`Persisted(seq)` for the highest such seq; the core then releases the messages that
promised that state (vote grants, append acknowledgements: thesis §3.8).

The acknowledgement is handed to `on_persisted`, which the node wires to a Subject
merged into its events: the fsync completes on a later loop turn, so this is a
feedback loop, never a recursive call into the core.

A failed write or fsync is fatal: the WAL refuses everything afterwards and the node
must restart and recover from disk (see abcd/storage/wal.py); `on_failure` says so.

A Persist carrying a snapshot (a follower installing the leader's, Figure 13) is
written in the order its docstring gives: `save_snapshot` makes the snapshot file
durable (in a worker thread: it can be tens of megabytes), then the WAL gets the
LOG_RESET record (`wal.reset_log`), then the Persist's hard state and entries.  While
the file is being saved, that Persist and every later one wait here, in order, so the
WAL never holds a record that depends on a snapshot that is not durable yet.  It is
acknowledged with Persisted like any other, once the fsync covering its records
completes; `on_snapshot_durable` is told then.  A failed save is fatal like a failed
write.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import Executor
from typing import Any, Callable, Protocol

from ..raft.effects import Persist
from ..raft.record import StepRecord

SyncDone = Callable[[BaseException | None], None]
# run_sync(fn, done): run fn() later (on the event loop after this turn's callbacks, or
# in a thread), then call done(error or None) on the loop; never inside run_sync itself.
SyncRunner = Callable[[Callable[[], None], SyncDone], None]


class WALLike(Protocol):
    def write(self, persist: Persist) -> None: ...
    def reset_log(self, snapshot_index: int, snapshot_term: int) -> None: ...
    def sync(self) -> None: ...


# save_snapshot(persist, done): save persist.snapshot / snapshot_data durably, later
# call done(error or None) on the loop; never inside save_snapshot itself.
SnapshotSaver = Callable[[Persist, Callable[[BaseException | None], None]], None]


def executor_sync_runner(loop: asyncio.AbstractEventLoop, executor: Executor | None = None) -> SyncRunner:
    """Run fsyncs in a thread of `executor` and report back on `loop`."""

    def run_sync(fn: Callable[[], None], done: SyncDone) -> None:
        future = loop.run_in_executor(executor, fn)

        def finished(f: asyncio.Future) -> None:
            if f.cancelled():
                done(asyncio.CancelledError("fsync cancelled"))
            else:
                done(f.exception())

        future.add_done_callback(finished)

    return run_sync


class AdaptiveSyncRunner:
    """Run each fsync on the event loop at the end of the turn, or in a worker thread
    when this disk's fsyncs are slow.

    On the loop: two call_soon hops put the fsync behind the callbacks the current
    step scheduled (the transport writers its messages woke), so a leader's
    AppendEntries leave before it blocks on its own write.  A fast disk's fdatasync
    (0.2-1 ms here) costs less than handing it to a thread and back: that took two
    cross-thread wake-ups and GIL hand-offs per fsync, on every node (single-client
    writes 377 -> 517/s in tools/bench.py).  A slow disk (network storage, a busy
    HDD) would stall the loop, heartbeats included: once the running average of
    fsync times passes `slow_seconds`, fsyncs go to the thread until it drops again.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: Executor | None = None,
        *,
        slow_seconds: float = 0.002,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._loop = loop
        self._threaded = executor_sync_runner(loop, executor)
        self.slow_seconds = slow_seconds
        self._clock = clock
        self.average_seconds = 0.0  # exponential moving average of fsync durations
        self.inline_syncs = 0
        self.threaded_syncs = 0

    @property
    def inline(self) -> bool:
        return self.average_seconds <= self.slow_seconds

    def __call__(self, fn: Callable[[], None], done: SyncDone) -> None:
        timed = self._timed(fn)
        if self.inline:
            self.inline_syncs += 1
            self._loop.call_soon(self._loop.call_soon, self._run_inline, timed, done)
        else:
            self.threaded_syncs += 1
            self._threaded(timed, done)

    def _timed(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            start = self._clock()
            try:
                fn()
            finally:
                self.average_seconds += 0.1 * ((self._clock() - start) - self.average_seconds)

        return run

    @staticmethod
    def _run_inline(fn: Callable[[], None], done: SyncDone) -> None:
        try:
            fn()
        except BaseException as error:  # reported to the sink, which decides what it means
            done(error)
            return
        done(None)


class WALSink:
    def __init__(
        self,
        wal: WALLike,
        run_sync: SyncRunner,
        on_persisted: Callable[[int], None],
        on_failure: Callable[[BaseException], None],
        clock: Callable[[], float] = time.monotonic,
        *,
        save_snapshot: SnapshotSaver | None = None,
        on_snapshot_durable: Callable[[Persist], None] = lambda persist: None,
    ) -> None:
        self._wal = wal
        self._run_sync = run_sync
        self._on_persisted = on_persisted
        self._on_failure = on_failure
        self._clock = clock
        self._save_snapshot = save_snapshot
        self._on_snapshot_durable = on_snapshot_durable
        # Persists waiting for a snapshot file to be saved; the first one carries it.
        self._held: deque[Persist] = deque()
        # Written Persists that installed a snapshot, until an fsync covers them.
        self._snapshots_unsynced: deque[Persist] = deque()
        # Invariant: synced_seq <= syncing_seq <= written_seq.
        self.written_seq = 0
        self.syncing_seq = 0  # what the fsync in flight covers (== synced_seq when idle)
        self.synced_seq = 0
        self.failed: BaseException | None = None
        self._in_flight = False
        self._sync_started = 0.0
        self._idle_waiters: list[asyncio.Future] = []
        # Statistics for /metrics.
        self.fsyncs = 0
        self.fsync_seconds = 0.0
        self.records_written = 0

    @property
    def idle(self) -> bool:
        return not self._in_flight and self.synced_seq == self.written_seq and not self._held

    def on_record(self, record: StepRecord) -> None:
        """A step's `persist` part."""
        persist = record.persist
        if persist is not None:
            self.write(persist)

    def write(self, persist: Persist) -> None:
        if self.failed is not None:
            return  # the node is stopping; nothing written now could be acknowledged
        if self._held:
            self._held.append(persist)  # behind a snapshot being saved, in order
        elif persist.snapshot is not None:
            self._hold_for_snapshot(persist)
        else:
            self._write(persist)

    def _write(self, persist: Persist) -> None:
        try:
            if persist.snapshot is not None:
                self._wal.reset_log(persist.snapshot.last_included_index, persist.snapshot.last_included_term)
            self._wal.write(persist)
        except BaseException as error:
            self._fail(error)
            return
        if persist.snapshot is not None:
            self._snapshots_unsynced.append(persist)
        self.written_seq = persist.seq
        self.records_written += 1
        self._maybe_sync()

    def _hold_for_snapshot(self, persist: Persist) -> None:
        self._held.append(persist)
        if self._save_snapshot is None:
            self._fail(RuntimeError(f"cannot install the snapshot of Persist {persist.seq}: no snapshot store"))
            return
        self._save_snapshot(persist, self._snapshot_saved)

    def _snapshot_saved(self, error: BaseException | None) -> None:
        if self.failed is not None:
            return
        if error is not None:
            self._fail(error)
            return
        held = self._held
        self._write(held.popleft())  # its snapshot is durable: LOG_RESET, then the rest
        while held and self.failed is None:
            persist = held[0]
            if persist.snapshot is not None:
                self._save_snapshot(persist, self._snapshot_saved)  # stays first in line
                return
            self._write(held.popleft())
        if self.idle:
            self._wake_idle_waiters()

    def _maybe_sync(self) -> None:
        if self._in_flight or self.written_seq <= self.synced_seq or self.failed is not None:
            return
        self._in_flight = True
        self.syncing_seq = self.written_seq
        self._sync_started = self._clock()
        self._run_sync(self._wal.sync, self._synced)

    def _synced(self, error: BaseException | None) -> None:
        self._in_flight = False
        self.fsyncs += 1
        self.fsync_seconds += self._clock() - self._sync_started
        if error is not None:
            self._fail(error)
            return
        self.synced_seq = self.syncing_seq
        self._on_persisted(self.synced_seq)
        self._maybe_sync()
        if self.idle:
            self._wake_idle_waiters()
        installed = self._snapshots_unsynced
        while installed and installed[0].seq <= self.synced_seq:
            self._on_snapshot_durable(installed.popleft())

    def _fail(self, error: BaseException) -> None:
        if self.failed is None:
            self.failed = error
            self._wake_idle_waiters()
            self._on_failure(error)

    def _wake_idle_waiters(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_idle(self) -> None:
        """Until no fsync is in flight and everything written is durable (or failed)."""
        if self.idle or self.failed is not None:
            return
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        await waiter
