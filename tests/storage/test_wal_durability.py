"""Durability cannot be skipped: sync() fsyncs what was written, a roll fsyncs the old
segment and the directory, sync() may run in another thread while writes go on, and
a failed write or fsync stops the WAL instead of pretending."""
from __future__ import annotations

import errno
import os
import threading

import pytest

from abcd.raft.effects import Persist
from abcd.raft.messages import Entry, HardState
from abcd.storage import WAL, StorageError


def run(term: int, first: int, last: int, tag: bytes = b"v") -> tuple[Entry, ...]:
    return tuple(Entry(term, i, tag + b"%d" % i) for i in range(first, last + 1))


@pytest.fixture
def synced(monkeypatch):
    """Record the inode of every file fsynced or fdatasynced (the real calls still run)."""
    inodes: list[int] = []
    real_fsync, real_fdatasync = os.fsync, getattr(os, "fdatasync", None)

    def fsync(fd):
        inodes.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    def fdatasync(fd):
        inodes.append(os.fstat(fd).st_ino)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    if real_fdatasync is not None:
        monkeypatch.setattr(os, "fdatasync", fdatasync)
    return inodes


def test_write_alone_is_not_synced_and_sync_fsyncs_the_current_segment(tmp_path, synced):
    wal, _ = WAL.open(tmp_path)
    segment = os.stat(wal.segment_paths[-1]).st_ino
    synced.clear()
    wal.write(Persist(1, HardState(1, 1), run(1, 1, 3)))
    assert synced == []
    wal.sync()
    assert synced == [segment]
    wal.close()


def test_rolling_fsyncs_the_old_segment_and_the_directory_before_using_the_new_one(tmp_path, synced):
    wal, _ = WAL.open(tmp_path, segment_bytes=100)
    wal.write(Persist(1, None, run(1, 1, 5, b"x" * 20)))
    old = os.stat(wal.segment_paths[-1]).st_ino
    directory = os.stat(tmp_path / "wal").st_ino
    synced.clear()
    wal.write(Persist(2, None, run(1, 6, 6)))  # rolls
    assert len(wal.segment_paths) == 2
    assert synced == [old, directory]
    new = os.stat(wal.segment_paths[-1]).st_ino
    synced.clear()
    wal.sync()
    assert new in synced
    wal.close()


def test_close_syncs(tmp_path, synced):
    wal, _ = WAL.open(tmp_path)
    segment = os.stat(wal.segment_paths[-1]).st_ino
    wal.write(Persist(1, None, run(1, 1, 1)))
    synced.clear()
    wal.close()
    assert segment in synced


def test_open_and_compact_make_their_directory_changes_durable(tmp_path, synced):
    wal, _ = WAL.open(tmp_path / "node", segment_bytes=60)
    directory = os.stat(tmp_path / "node" / "wal").st_ino
    assert directory in synced  # the first segment's name
    assert os.stat(tmp_path / "node").st_ino in synced  # the new wal/ directory
    wal.write(Persist(1, None, run(1, 1, 3, b"y" * 20)))
    wal.write(Persist(2, None, run(1, 4, 4)))
    synced.clear()
    assert wal.compact(3) == 1
    assert synced == [directory]
    wal.close()


def test_sync_in_another_thread_while_writes_roll_segments(tmp_path):
    fds_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    wal, _ = WAL.open(tmp_path, segment_bytes=2000)
    stop, running = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    syncs = [0]

    def syncer():
        try:
            while True:
                wal.sync()
                syncs[0] += 1
                running.set()
                if stop.is_set():
                    break
        except BaseException as e:  # reported below
            errors.append(e)
            running.set()

    thread = threading.Thread(target=syncer)
    thread.start()
    assert running.wait(timeout=30)
    try:
        for i in range(1, 401):
            wal.write(Persist(i, HardState(i, None) if i % 50 == 0 else None, run(1, i, i, b"z" * 30)))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert syncs[0] > 0
    assert len(wal.segment_paths) > 5
    wal.close()
    if fds_before is not None:
        assert len(os.listdir("/proc/self/fd")) == fds_before  # every rolled segment's fd was closed
    wal, recovered = WAL.open(tmp_path)
    wal.close()
    assert recovered.entries == list(run(1, 1, 400, b"z" * 30))
    assert recovered.hard_state == HardState(400, None)


def test_a_failed_fsync_stops_the_wal(tmp_path, monkeypatch):
    wal, _ = WAL.open(tmp_path)
    wal.write(Persist(1, None, run(1, 1, 1)))

    def broken(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    monkeypatch.setattr(os, "fdatasync", broken, raising=False)
    with pytest.raises(StorageError, match=r"fsync of the WAL .* failed: .*Input/output error.*restart the node"):
        wal.sync()
    monkeypatch.undo()
    # A later fsync could "succeed" after the kernel dropped the pages: never trust it.
    with pytest.raises(StorageError, match="refuses writes since an earlier failure"):
        wal.sync()
    with pytest.raises(StorageError, match="refuses writes since an earlier failure"):
        wal.write(Persist(2, None, run(1, 2, 2)))
    wal.close()


def test_a_failed_write_leaves_no_half_record_behind(tmp_path, monkeypatch):
    wal, _ = WAL.open(tmp_path)
    wal.write(Persist(1, HardState(1, 1), run(1, 1, 2)))
    size = os.path.getsize(wal.segment_paths[-1])
    real_pwrite = os.pwrite

    def short_pwritev(fd, buffers, offset):
        return real_pwrite(fd, bytes(buffers[0])[:5], offset)  # the disk fills up part-way

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", short_pwritev)
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(StorageError, match="No space left on device"):
        wal.write(Persist(2, None, run(1, 3, 9)))
    monkeypatch.undo()
    assert os.path.getsize(wal.segment_paths[-1]) == size
    with pytest.raises(StorageError, match="refuses writes"):
        wal.write(Persist(3, None, run(1, 3, 3)))
    wal.close()
    wal, recovered = WAL.open(tmp_path)
    wal.close()
    assert recovered.torn_bytes_truncated == 0
    assert recovered.entries == list(run(1, 1, 2))


def test_a_second_open_of_the_same_wal_is_refused(tmp_path):
    wal, _ = WAL.open(tmp_path)
    with pytest.raises(StorageError, match="in use by another process"):
        WAL.open(tmp_path)
    wal.close()
    WAL.open(tmp_path)[0].close()
