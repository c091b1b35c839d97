"""Snapshots of a running node: taking them, sending them, installing them, starting from them.

Theory of operation
-------------------
Taking (§7 of the Raft paper).  Once `snapshot_count` entries were applied since the
newest snapshot, and none is being taken, `Snapshotter.on_record` (a sink after the
applier) forks a child process on the event loop (snapshot_child.py): its
copy-on-write image of the process is the store exactly at the applied index, and it
encodes that with orjson and saves it durably as `snap/<term>-<index>.snap`, with the
configuration as of that index in its meta (voters, learners, and the member table's
context: see membership.py), on its own interpreter lock and at a lower priority than
the node.  A worker thread waits for the child, reads the file back (checking it) for
sending, and prunes the older files (the newest `max_snapshots` stay).  Where the
node cannot fork, and after a child has failed, the store is captured on the loop
instead (kv/snapshot.capture copies the containers and shares the immutable KVs, so
later writes cannot change the capture) and the worker thread encodes it in slices
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

Sending.  The core asks for a snapshot with an InstallSnapshotRequest whose data is
empty (it never holds state-machine bytes); `fill` puts the node's newest snapshot in
it as it leaves: index, term, configuration and data.  The newest snapshot is always
at or after the start of the core's log, because the core's log is only ever
compacted behind it or replaced by it.

What travels (`encode_wire`): one header line of JSON, then the KV snapshot
document (kv/snapshot.py)::

    {"format":"abcd-node-snapshot","version":1,"members":"<context>"}\\n{"format":"abcd-kv",...}

The header carries what the follower needs besides the state machine: the member
table as of the snapshot's index, which no log entry may hold any more.  It is kept in
memory in this form (`NodeSnapshot.data`), so sending costs no copy.

Installing.  A follower screens each InstallSnapshotRequest as it arrives
(`screen`): the header, and the whole KV document loaded into a new store, are
checked before the core sees the message; a malformed one is dropped with an error
naming the sender and what is wrong, and the node keeps its state (the leader resends
after an election timeout).  The core then answers with Persist(snapshot=...) and
Restore in one step: the WAL sink saves the snapshot through `save_installed` before it
writes the WAL's LOG_RESET, and the applier swaps the store prepared here into the live
one (`store_for`).  Once that Persist is durable, `on_install_durable` compacts the WAL.

Starting (`recover`).  The newest intact snapshot file is loaded into the store, the
core is built on it and on the WAL entries after it, and the member table starts from
its meta.  Damage is an error naming the file, never a silent fall-back that could
lose committed entries.

One worker thread does every snapshot file operation (waiting for the child that saves
a taken snapshot, saving installed snapshots, pruning), so they never race: pruning
deletes stale temp files, which could otherwise be one being written.  It is not the
fsync thread, so no WAL fsync ever waits behind a snapshot.
"""
from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any, Callable

import loguru
import orjson

from ..kv import KVStore, SnapshotError
from ..kv import snapshot as kv_snapshot
from ..kv.mvcc import CapturedEvents, CapturedVersions
from ..raft.effects import Persist, Restore
from ..raft.messages import Entry, InstallSnapshotRequest, Message, Snapshot
from ..storage import StorageError, load_latest_snapshot, prune_snapshots, read_snapshot, save_snapshot
from ..storage.recovery import Recovered
from . import snapshot_child
from .membership import Membership, check_context

WIRE_FORMAT = "abcd-node-snapshot"
WIRE_VERSION = 1
# A header line longer than this is not ours (the member table of even a large
# cluster is a few kilobytes); refusing early avoids scanning megabytes for a newline.
MAX_HEADER_BYTES = 1024 * 1024
# Snapshot files and covered WAL segments kept by default (etcd's --max-snapshots and
# --max-wals); 0 keeps them all.
KEEP_SNAPSHOTS = 2
KEEP_WAL_SEGMENTS = 2
# Items of a big list per orjson call in encode_state_parts: well under a millisecond
# of work for typical keys, so the thread encoding a snapshot hands the GIL back to the
# event loop at least that often.
ENCODE_SLICE = 1024
# Entries dropped from the core's log per loop turn when it is compacted behind a new
# snapshot.  Freeing 100,000 entries in one call held the loop for 30-100 ms (each
# entry and its command are freed, a page fault apiece after the fork), which was the
# writes' p99 at c=256; a step this size takes a few milliseconds.
COMPACT_STEP = 4096

Done = Callable[[Any, BaseException | None], None]
# run(fn, done): run fn() in a worker thread, then done(result, error) on the loop.
Runner = Callable[[Callable[[], Any], Done], None]
OnEvent = Callable[[str, dict], None]


class SnapshotDataError(ValueError):
    """Snapshot bytes that are not what a node sends; str() says what is wrong."""


def prune(data_dir: str, keep: int) -> list[str]:
    """Delete all but the `keep` newest snapshot files (0: none), and stale temp files."""
    return prune_snapshots(data_dir, keep=keep or sys.maxsize)


# --------------------------------------------------------------------------- formats


def encode_state_parts(state: dict, *, pause: bool = True) -> list[bytes]:
    """A KV capture as kv/snapshot.encode would write it (compact UTF-8 JSON, keys in
    capture order), in pieces: the big lists are encoded by orjson a slice at a time.

    Meant for a worker thread.  After each slice it yields the GIL (time.sleep(0),
    unless `pause` is false: a process of its own has no one to yield to): a
    thread that gives the GIL up only when forced to (after the 5 ms switch interval)
    makes the event loop wait up to that long each time the loop releases it for I/O.
    Measured while a 63,000-key store was encoded: the loop's longest wait 7-9 ms
    instead of 10-14 ms, and 2.5 times as many loop turns.
    """
    parts: list[bytes] = []
    for key, value in state.items():
        parts.append(b"," if parts else b"{")
        parts.append(orjson.dumps(key))
        parts.append(b":")
        if isinstance(value, (list, CapturedVersions, CapturedEvents)) and len(value) > ENCODE_SLICE:
            parts.append(b"[")
            for start in range(0, len(value), ENCODE_SLICE):
                if start:
                    parts.append(b",")
                parts.append(orjson.dumps(value[start : start + ENCODE_SLICE])[1:-1])
                if pause:
                    time.sleep(0)
            parts.append(b"]")
        elif isinstance(value, (CapturedVersions, CapturedEvents)):
            parts.append(orjson.dumps(value.to_list()))
        else:
            parts.append(orjson.dumps(value))
    parts.append(b"}" if parts else b"{}")
    return parts


def encode_state(state: dict, *, pause: bool = True) -> bytes:
    """encode_state_parts, joined: the same bytes as one orjson.dumps(state)."""
    return b"".join(encode_state_parts(state, pause=pause))


def wire_header(members: str | None) -> bytes:
    return orjson.dumps({"format": WIRE_FORMAT, "version": WIRE_VERSION, "members": members}) + b"\n"


def encode_wire(members: str | None, kv: bytes | list[bytes]) -> bytes:
    """What an InstallSnapshotRequest carries: the header line, then the KV document
    (given whole, or as the parts of encode_state_parts: joined once, not twice)."""
    parts = kv if type(kv) is list else [kv]
    return b"".join([wire_header(members), *parts])


def decode_wire(data: bytes) -> tuple[str | None, memoryview]:
    """(the member table context, the KV document) of `encode_wire` bytes."""
    end = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise SnapshotDataError(
            f"snapshot data does not start with a header line (JSON, at most {MAX_HEADER_BYTES} bytes, then a newline)"
        )
    view = memoryview(data)
    try:
        header = orjson.loads(view[:end])
    except orjson.JSONDecodeError as error:
        raise SnapshotDataError(f"snapshot data header is not valid JSON: {error}") from None
    if type(header) is not dict or header.get("format") != WIRE_FORMAT:
        raise SnapshotDataError(f"snapshot data header is not an {WIRE_FORMAT} header: {bytes(view[:80])!r}")
    if header.get("version") != WIRE_VERSION:
        raise SnapshotDataError(
            f"snapshot data format version {header.get('version')!r} is not supported (expected {WIRE_VERSION})"
        )
    members = header.get("members")
    if members is not None and type(members) is not str:
        raise SnapshotDataError(f"snapshot data header: members must be a string or null, got {type(members).__name__}")
    return members, view[end + 1 :]


def load_store(template: KVStore, kv: bytes | memoryview) -> KVStore:
    """A new store (with `template`'s bounds) holding the KV snapshot `kv`.

    Parsed by orjson, which reads a memoryview without copying and is faster than the
    standard library's parser the kv package uses; the document is the same.
    """
    try:
        state = orjson.loads(kv)
    except orjson.JSONDecodeError as error:
        raise SnapshotError(f"snapshot is not valid JSON: {error}") from None
    store = template.empty_like()
    kv_snapshot.load(store, state)
    return store


def thread_runner(loop: asyncio.AbstractEventLoop, executor: Executor) -> Runner:
    """Run jobs in `executor` and report back on `loop` (never inside `run` itself)."""

    def run(fn: Callable[[], Any], done: Done) -> None:
        future = loop.run_in_executor(executor, fn)

        def finished(f: asyncio.Future) -> None:
            if f.cancelled():
                done(None, asyncio.CancelledError("snapshot job cancelled"))
            elif f.exception() is not None:
                done(None, f.exception())
            else:
                done(f.result(), None)

        future.add_done_callback(finished)

    return run


# --------------------------------------------------------------------------- the node's snapshots


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A snapshot this node holds, durable in `path` (None while an installed one is
    still being saved), and in memory as it travels (`data`: see encode_wire)."""

    index: int
    term: int
    voters: frozenset[int]
    learners: frozenset[int]
    members: str | None
    data: bytes
    path: str | None = None

    def raft_snapshot(self) -> Snapshot:
        return Snapshot(self.index, self.term, self.voters, self.learners)


@dataclass(slots=True)
class _Prepared:
    """A screened InstallSnapshotRequest's state, loaded before the core saw it."""

    data: bytes
    store: KVStore
    index: int


def recover(
    data_dir: str, recovered: Recovered, store: KVStore, logger=loguru.logger
) -> tuple[NodeSnapshot | None, list[Entry]]:
    """Load the newest intact snapshot into `store`; (it, the WAL entries after it).

    Raises StorageError naming the file when a snapshot cannot be used, or when the WAL
    does not continue where the snapshot ends (the files passed over are listed too).
    """
    loaded = load_latest_snapshot(data_dir)
    if loaded is None:
        return None, recovered.entries_after(0)
    for reason in loaded.skipped:
        logger.warning("passed over a snapshot file: {}", reason)
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
        self._run = run
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
        self.newest = newest
        self.in_progress = False  # a snapshot is being taken
        self._jobs = 0  # worker-thread jobs not yet reported back
        self._idle_waiters: list[asyncio.Future] = []
        self._retry_from = 0  # after a failed attempt: the applied index to try again at
        self._prepared: _Prepared | None = None
        self._closed = False
        # Statistics for /metrics.
        self.taken = 0
        self.take_seconds = 0.0
        self.failures = 0
        self.sent = 0
        self.installed = 0
        self.refused = 0

    @property
    def newest_index(self) -> int:
        return self.newest.index if self.newest is not None else 0

    def close(self) -> None:
        """The node is stopping: a snapshot finishing now is kept, but compacts nothing."""
        self._closed = True

    async def wait_idle(self) -> None:
        """Until no worker-thread job is in flight."""
        if self._jobs:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def _submit(self, fn: Callable[[], Any], done: Done) -> None:
        self._jobs += 1

        def finished(result: Any, error: BaseException | None) -> None:
            self._jobs -= 1
            try:
                done(result, error)
            finally:
                if not self._jobs:
                    waiters, self._idle_waiters = self._idle_waiters, []
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(None)

        self._run(fn, finished)

    # ------------------------------------------------------------------ taking

    def on_record(self, record) -> None:
        """After the applier: take a snapshot once enough entries were applied."""
        prepared = self._prepared
        if prepared is not None and prepared.index <= record.soft.commit_index:
            self._prepared = None  # installed (the applier took it) or no longer needed
        if not self.snapshot_count or self.in_progress or self._closed:
            return
        applied = self._store.applied_index
        if applied - self.newest_index >= self.snapshot_count and applied >= self._retry_from:
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
                index, term, members, meta, kv_snapshot.capture(store), self._data_dir, self.max_snapshots
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
                self.newest = snapshot
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
            kv = encode_state(kv_snapshot.capture(store), pause=False)
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
        self._retry_from = index + max(1, self.snapshot_count)
        how = ""
        if isinstance(error, snapshot_child.SnapshotChildError) and self.fork:
            # A child killed (by the kernel's out-of-memory killer, say: a fork can
            # double the node's memory) would be killed again; the thread needs none.
            self.fork = False
            how = " (in the worker thread, not a forked child)"
        self._logger.opt(exception=error).error(
            "taking a snapshot at index {} failed: {}; the WAL keeps every entry, the next attempt is at index {}{}",
            index, error, self._retry_from, how,
        )

    def _compact(self, index: int) -> tuple[int, int]:
        """Compact the core's log and the WAL behind a durable snapshot at `index`.

        The WAL at once (it only deletes whole files); the core's log from here on, in
        steps (`_compact_log_step`).  Returns where the log is being compacted to, and
        the number of WAL segments deleted."""
        start = self._view.log_start
        target = max(start, index - self.catchup_entries)
        if self._closed:
            return start, 0
        if target > self._compact_target:
            self._compact_target = target
            self._compact_snapshot = index
        if not self._compacting:
            self._compact_log_step()
        # Never past this snapshot: a newer one installed meanwhile may not be durable
        # yet, nor the WAL's record that the log now starts after it.
        return target, self._compact_wal(min(target, index))

    def _compact_log_step(self) -> None:
        """Drop up to COMPACT_STEP entries of the core's log towards `_compact_target`,
        and defer the next step if more are left.  A snapshot installed meanwhile may
        have replaced the log beyond the target: then nothing is left to do."""
        self._compacting = False
        start = max(self._view.log_start, self._compacted_to)
        if self._closed or self._compact_target <= start:
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

    def _compact_wal(self, upto: int) -> int:
        try:
            if not self.max_wals:
                return 0  # keep every segment
            return self._wal.compact(upto, keep=self.max_wals)
        except (StorageError, OSError) as error:
            # Old segments left behind cost disk space, never safety: go on.
            self._logger.error("compacting the WAL up to index {} failed: {}", upto, error)
            return 0

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

    def members_of(self, restore: Restore) -> str | None:
        """The member table context a Restore's snapshot carries."""
        return decode_wire(restore.data)[0]

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

    def on_restored(self, restore: Restore) -> None:
        """The applier restored the store: this is now the node's newest snapshot."""
        s = restore.snapshot
        self.newest = NodeSnapshot(
            s.last_included_index, s.last_included_term, frozenset(s.voters), frozenset(s.learners),
            self.members_of(restore), restore.data,
        )
        self._retry_from = 0

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
                newest = self.newest
                if newest is not None and newest.index == s.last_included_index and newest.path is None:
                    self.newest = replace(newest, path=path)
            done(error)

        self._submit(job, saved)

    def on_install_durable(self, persist: Persist) -> None:
        """The WAL sink: a Persist that installed a snapshot is durable (file, LOG_RESET)."""
        s = persist.snapshot
        self.installed += 1
        segments = 0 if self._closed else self._compact_wal(s.last_included_index)
        self._on_event(
            "SnapshotInstalled",
            {
                "index": s.last_included_index,
                "snapshot_term": s.last_included_term,
                "bytes": len(persist.snapshot_data),
                "wal_segments_removed": segments,
            },
        )
