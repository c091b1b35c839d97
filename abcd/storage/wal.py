"""The write-ahead log: Persist effects made durable in segment files.

Theory of operation
-------------------
`<data-dir>/wal/` holds segment files named `<first-index>.wal` (20 digits, so names
sort in write order), where first-index is the log's next index when the segment was
created.  Records are framed and checksummed by records.py; recovery.py replays them.

One thread (the event loop) calls write(), compact() and close(); sync() may run at
the same time in an executor thread, which is how group commit works: while one
fsync runs, the loop keeps appending, and the next sync() covers all of it.  The two
threads share only the current segment's file descriptor and the list of rolled
segments not yet fsynced, both guarded by `_lock`.  A rolled segment's descriptor is
closed by the sync() that flushed it, never by write(), so a sync() in flight never
fsyncs a descriptor number that was closed (or reused) under it.

Rolling: when the current segment has reached segment_bytes, the next write() cuts
it to its last record, fsyncs it, creates the next segment, fsyncs the directory and
starts the new segment with the current hard state.  Fsyncing before creating means a
torn write can only ever be in the last segment, so recovery can call damage anywhere
else corruption; it costs one fsync on the writing thread per segment_bytes of log.
Starting each segment with the hard state means compact() can delete older segments
without losing the term and vote.

Preallocation (`preallocate_bytes`): a worker thread keeps the current segment
zero-filled and fsynced ahead of the writes, `preallocate_bytes` at a time.  An
fdatasync after a write into space that is already allocated and inside the file's
size has no metadata to commit, so on ext4 it skips the journal commit that an
append needs, and three members syncing at once on one disk wait for each other less
(docs/performance.md).  A write never lands in a range the worker is still filling:
it waits for the worker first (the worker starts while half a chunk of filled space
is still ahead of the writes, so it has normally long finished).  A new segment gets
its first 256 KiB on the writing thread.  Recovery reads the zeros after the last
record as unused space.

Errors: a failed write or fsync leaves the WAL refusing all further writes and syncs
(after a failed fsync the kernel may have dropped the dirty pages, so a later fsync
that "succeeds" proves nothing); the node must restart and recover from disk.
"""
from __future__ import annotations

import os
import threading

from ..raft.effects import Persist
from ..raft.messages import HardState
from .errors import StorageError
from .files import O_CLOEXEC, O_DIRECTORY, datasync, ensure_dir, pwrite_all
from .records import encode_entries, encode_hard_state, encode_log_reset
from .recovery import Recovered, Segment, list_segments, replay, segment_name

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

WAL_DIRNAME = "wal"
DEFAULT_SEGMENT_BYTES = 64 * 2**20
_ZEROS = bytes(2**20)
# Zero-filled on the writing thread when a segment has nothing ahead of its records
# (a new segment): small enough to cost about a millisecond, big enough to last until
# the worker has filled the rest of the chunk.
_FIRST_FILL_BYTES = 256 * 2**10


class WAL:
    """A node's write-ahead log.  Create it with WAL.open(data_dir)."""

    def __init__(
        self,
        *,
        wal_dir: str,
        dir_fd: int,
        segments: list[Segment],
        fd: int,
        size: int,
        hard_state: HardState,
        last_index: int,
        segment_bytes: int,
        preallocate_bytes: int = 0,
    ) -> None:
        self._wal_dir = wal_dir
        self._dir_fd = dir_fd  # held open for the process lock and for directory fsyncs
        self._segments = segments  # Invariant: names strictly increasing; the last is being written
        self._fd = fd  # the last segment; written with pwritev at _size
        self._size = size  # bytes of records in the last segment
        # The last segment's bytes [_size, _capacity) are zeros already in the file (and
        # durable, once the filler that wrote them has fsynced).  Written only under _lock.
        self._capacity = max(size, os.fstat(fd).st_size)
        self._preallocate_bytes = preallocate_bytes
        self._filler: threading.Thread | None = None  # zero-filling [_fill_start, ...)
        self._fill_start = 0
        self.fill_error: str | None = None  # the last failed fill (not fatal: writes just append)
        self._fill_failed_fd = -1  # the segment whose fill failed: no more tries on it
        self._hard_state = hard_state  # as of the last write(): what a new segment starts with
        self._last_index = last_index  # as of the last write()
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()  # guards _fd, _retired, _closed between write() and sync()
        self._sync_lock = threading.Lock()  # one sync() at a time; close() waits for it
        self._retired: list[int] = []  # rolled segments' fds, closed by the next sync()
        self._failed: str | None = None
        self._closed = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        preallocate_bytes: int = 0,
        covered: int = 0,
    ) -> tuple["WAL", Recovered]:
        """Open (creating if needed) `<data_dir>/wal/` and recover its contents.

        `covered`: the index of the snapshot the caller starts from; entries wholly
        below it are not decoded (recovery.replay), so the log recovered may start
        later than the oldest segment, but never after `covered`.

        With `preallocate_bytes` > 0 the current segment is zero-filled that far ahead
        of the writes, in a worker thread (see the module docstring).

        Raises CorruptWALError if a segment is damaged other than by a torn final write,
        StorageError if another process has the WAL open or a file is misnamed.
        """
        if type(segment_bytes) is not int or segment_bytes < 1:
            raise ValueError(f"segment_bytes must be a positive int, not {segment_bytes!r}")
        if type(preallocate_bytes) is not int or preallocate_bytes < 0:
            raise ValueError(f"preallocate_bytes must be an int >= 0, not {preallocate_bytes!r}")
        wal_dir = os.path.join(os.fspath(data_dir), WAL_DIRNAME)
        ensure_dir(wal_dir)
        dir_fd = os.open(wal_dir, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try:
            _lock_exclusively(dir_fd, wal_dir)
            wal, recovered = cls._recover(wal_dir, dir_fd, segment_bytes, preallocate_bytes, covered)
        except BaseException:
            os.close(dir_fd)  # also drops the lock
            raise
        return wal, recovered

    @classmethod
    def _recover(
        cls, wal_dir: str, dir_fd: int, segment_bytes: int, preallocate_bytes: int, covered: int = 0
    ) -> tuple["WAL", Recovered]:
        segments = list_segments(wal_dir)
        if segments:
            recovered, good_size = replay(segments, covered)
            fd = os.open(segments[-1].path, os.O_WRONLY | O_CLOEXEC)
        else:
            recovered, good_size = Recovered(HardState(), [], 1, 0), 0
            segments = [Segment(1, os.path.join(wal_dir, segment_name(1)))]
            fd = _create_segment(segments[0].path, dir_fd)
        try:
            if recovered.torn_bytes_truncated or (not preallocate_bytes and os.fstat(fd).st_size > good_size):
                # Cut the torn write off durably now: writing after it would bury it in
                # the middle of the segment, where it would read as corruption.  (A tail
                # of zeros is kept when preallocating: it is space to write into.)
                os.ftruncate(fd, good_size)
                datasync(fd)
            size = good_size
            if size == 0:
                # A new (or wholly torn) last segment: start it with the hard state, as
                # every segment does, so compaction never loses the term and vote.
                record = encode_hard_state(recovered.hard_state)
                pwrite_all(fd, record, 0)
                datasync(fd)
                size = len(record)
        except BaseException:
            os.close(fd)
            raise
        wal = cls(
            wal_dir=wal_dir,
            dir_fd=dir_fd,
            segments=segments,
            fd=fd,
            size=size,
            hard_state=recovered.hard_state,
            last_index=recovered.last_index,
            segment_bytes=segment_bytes,
            preallocate_bytes=preallocate_bytes,
        )
        wal._fill_ahead()
        return wal, recovered

    # ------------------------------------------------------------------ state

    @property
    def last_index(self) -> int:
        return self._last_index

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    @property
    def segment_paths(self) -> list[str]:
        return [segment.path for segment in self._segments]

    # ------------------------------------------------------------------ writing

    def write(self, persist: Persist) -> None:
        """Append a Persist effect: its hard state (if any), then its entries (if any).

        Buffered by the OS, not yet durable: call sync() before sending Persisted.
        """
        self._check_writable()
        hard_state = persist.hard_state
        entries = persist.entries
        records = []
        if hard_state is not None:
            records.append(encode_hard_state(hard_state))
        if entries:
            start = entries[0].index
            if start < 1 or start > self._last_index + 1:
                raise StorageError(
                    f"cannot persist entries starting at index {start}: the log ends at index "
                    f"{self._last_index}, so the first new entry must be at most {self._last_index + 1} "
                    "(a gap would make the WAL unreadable)"
                )
            records.extend(encode_entries(entries))
        if not records:
            return
        self._append(records, hard_state_written=hard_state is not None)
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            self._last_index = entries[-1].index
            segment = self._segments[-1]
            segment.max_index = max(segment.max_index, self._last_index)

    def reset_log(self, snapshot_index: int, snapshot_term: int) -> None:
        """Empty the log: a snapshot through `snapshot_index` was installed from the leader.

        The next entries written start at snapshot_index + 1.  Durable after sync(),
        like write(); save the snapshot itself durably first.
        """
        self._check_writable()
        if snapshot_index < 0:
            raise ValueError(f"snapshot_index must be >= 0, not {snapshot_index}")
        self._append([encode_log_reset(snapshot_index, snapshot_term)], hard_state_written=False)
        self._last_index = snapshot_index
        segment = self._segments[-1]
        segment.max_index = max(segment.max_index, snapshot_index)

    def _append(self, records: list[bytes], *, hard_state_written: bool) -> None:
        # A segment is rolled only once the log has moved past its first index, so
        # that names stay strictly increasing even after a suffix was cut back below
        # the current segment's start.
        if self._size >= self._segment_bytes and self._last_index + 1 > self._segments[-1].first_index:
            self._roll()
            if not hard_state_written:
                records.insert(0, encode_hard_state(self._hard_state))
        fd = self._fd
        total = sum(map(len, records))
        if self._size + total > self._fill_start:
            self._join_filler()  # its zeros must not land on these records
        try:
            written = os.pwritev(fd, records, self._size) if hasattr(os, "pwritev") else 0
            if written < total:
                pwrite_all(fd, memoryview(b"".join(records))[written:], self._size + written)
        except OSError as e:
            # Cut off whatever part got written, so that a restart does not find a
            # half record in the middle of the segment.
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                pass
            raise self._fail(f"writing {self._segments[-1].path} failed: {e}") from e
        self._size += total
        self._fill_ahead()

    def _fill_ahead(self) -> None:
        """Start zero-filling the next chunk once less than half a chunk is left."""
        chunk = self._preallocate_bytes
        if not chunk or self._filler is not None or self._size >= self._segment_bytes:
            return
        fd = self._fd
        if fd == self._fill_failed_fd:
            return  # not again on this segment: every write would pay for a failing call
        if self._capacity <= self._size:  # a new segment: nothing ahead of the records yet
            if not self._fill(fd, self._size, self._size + min(chunk, _FIRST_FILL_BYTES)):
                return
        if self._capacity - self._size >= chunk // 2:
            return
        start = self._capacity
        self._fill_start = start
        self._filler = threading.Thread(
            target=self._fill, args=(fd, start, start + chunk), name="wal-preallocate", daemon=True
        )
        self._filler.start()

    def _fill(self, fd: int, start: int, end: int) -> bool:
        """Write zeros over [start, end) of `fd` and fsync them; False if that failed."""
        try:
            pos = start
            while pos < end:
                pos += os.pwrite(fd, memoryview(_ZEROS)[: end - pos], pos)
            datasync(fd)
        except OSError as e:
            # Not fatal: writes beyond the filled space append, as without preallocation.
            self.fill_error = f"preallocating {end - start} bytes at offset {start} failed: {e}"
            self._fill_failed_fd = fd
            return False
        with self._lock:
            if self._fd == fd:
                self._capacity = max(self._capacity, end)
        return True

    def _join_filler(self) -> None:
        if self._filler is not None:
            self._filler.join()
            self._filler = None

    def _roll(self) -> None:
        old_fd = self._fd
        first_index = self._last_index + 1
        path = os.path.join(self._wal_dir, segment_name(first_index))
        self._join_filler()
        try:
            if self._capacity > self._size:
                # A rolled segment ends at its last record: only the last segment may
                # hold unused space, so recovery can call damage anywhere else corruption.
                os.ftruncate(old_fd, self._size)
            datasync(old_fd)
            fd = _create_segment(path, self._dir_fd)
        except OSError as e:
            raise self._fail(f"rolling to a new WAL segment {path} failed: {e}") from e
        with self._lock:
            self._fd = fd
            self._capacity = 0
            self._fill_failed_fd = -1
            self._retired.append(old_fd)
        self._segments.append(Segment(first_index, path))
        self._size = 0

    # ------------------------------------------------------------------ durability

    def sync(self) -> None:
        """Make everything written so far durable (fdatasync the segments written since
        the last sync).  Safe to call from another thread while write() goes on."""
        with self._sync_lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        with self._lock:
            self._check_usable()
            fd = self._fd
            retired, self._retired = self._retired, []
        try:
            for old_fd in retired:
                datasync(old_fd)
            datasync(fd)
        except OSError as e:
            raise self._fail(f"fsync of the WAL in {self._wal_dir} failed: {e}") from e
        finally:
            for old_fd in retired:
                os.close(old_fd)

    # ------------------------------------------------------------------ compaction

    def compact(self, upto_index: int, keep: int = 0) -> int:
        """Delete the oldest segments whose entries all have index <= upto_index, while
        more than `keep` segments remain (0: no such floor).

        Call only once a snapshot covering upto_index is durable.  Never deletes the
        last segment.  Returns how many segments were deleted.
        """
        self._check_writable()
        removable = 0
        for segment in self._segments[:-1]:
            if segment.max_index > upto_index:
                break
            removable += 1
        if keep:
            removable = min(removable, max(0, len(self._segments) - keep))
        if not removable:
            return 0
        # Oldest first: a crash part-way leaves a suffix of segments, which replays.
        for _ in range(removable):
            segment = self._segments[0]
            try:
                os.unlink(segment.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise StorageError(f"cannot delete WAL segment {segment.path}: {e}") from e
            del self._segments[0]
        try:
            os.fsync(self._dir_fd)
        except OSError as e:
            raise StorageError(f"fsync of {self._wal_dir} after compaction failed: {e}") from e
        return removable

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Sync (unless a write or fsync failed) and close.  Idempotent."""
        self._join_filler()
        with self._sync_lock:
            if self._closed:
                return
            try:
                if self._failed is None:
                    self._sync_locked()
            finally:
                with self._lock:
                    self._closed = True
                    fds = [*self._retired, self._fd]
                    self._retired = []
                for fd in fds:
                    os.close(fd)
                os.close(self._dir_fd)

    def __enter__(self) -> "WAL":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"the WAL in {self._wal_dir} is closed")
        if self._failed is not None:
            raise StorageError(f"the WAL in {self._wal_dir} refuses writes since an earlier failure: {self._failed}")

    def _check_writable(self) -> None:
        with self._lock:
            self._check_usable()

    def _fail(self, reason: str) -> StorageError:
        self._failed = reason
        return StorageError(
            f"{reason}; the WAL refuses further writes, restart the node to recover from disk"
        )


def _create_segment(path: str, dir_fd: int) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_CLOEXEC, 0o644)
    try:
        os.fsync(dir_fd)  # the new name must survive a crash before any record in it counts
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lock_exclusively(dir_fd: int, wal_dir: str) -> None:
    """Two processes appending to one WAL would interleave records: refuse the second."""
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StorageError(
            f"{wal_dir} is in use by another process (is a node already running with this data dir?)"
        ) from None
