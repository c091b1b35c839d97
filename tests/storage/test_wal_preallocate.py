"""Preallocated segments: zeros kept ahead of the writes are unused space on recovery,
a rolled segment is cut to its records, and a crash that leaves sectors of an
unacknowledged write unwritten is a torn write, not corruption."""
from __future__ import annotations

import errno
import os

import pytest

from abcd.raft.effects import Persist
from abcd.raft.messages import Entry, HardState
from abcd.storage import WAL, CorruptWALError
from abcd.storage.records import SECTOR

CHUNK = 16 * 1024


def run(term: int, first: int, last: int, size: int = 40) -> tuple[Entry, ...]:
    return tuple(Entry(term, i, b"%07d" % i + b"x" * size) for i in range(first, last + 1))


def open_wal(data_dir, **kw):
    return WAL.open(data_dir, preallocate_bytes=CHUNK, **kw)


def settle(wal: WAL) -> None:
    wal._join_filler()  # the worker's fill is part of the state these tests look at


def records_end(wal: WAL) -> int:
    return wal._size


def test_zeros_are_kept_ahead_of_the_records_and_reopen_writes_on_after_the_last_record(tmp_path):
    wal, _ = open_wal(tmp_path)
    last = 0
    for k in range(40):
        wal.write(Persist(k + 1, HardState(1, 1) if k == 0 else None, run(1, last + 1, last + 5)))
        last += 5
        settle(wal)
        size = os.path.getsize(wal.segment_paths[-1])
        assert size - records_end(wal) >= CHUNK // 2 - 1, k  # never less than half a chunk ahead
    segment, end = wal.segment_paths[-1], records_end(wal)
    wal.close()
    with open(segment, "rb") as f:
        data = f.read()
    assert len(data) > end and not any(data[end:])

    wal, recovered = open_wal(tmp_path)
    assert recovered.torn_bytes_truncated == 0
    assert recovered.entries == list(run(1, 1, last))
    assert os.path.getsize(segment) >= len(data)  # the zeros are kept as space to write into
    wal.write(Persist(99, HardState(2, None), run(2, last + 1, last + 3)))
    wal.close()
    wal, recovered = WAL.open(tmp_path)  # and a WAL that does not preallocate reads it too
    wal.close()
    assert recovered.hard_state == HardState(2, None)
    assert recovered.entries == list(run(1, 1, last) + run(2, last + 1, last + 3))
    assert os.path.getsize(segment) < len(data)  # it cuts the unused zeros off


def test_a_rolled_segment_is_cut_to_its_records(tmp_path):
    wal, _ = open_wal(tmp_path, segment_bytes=3000)
    last = 0
    while len(wal.segment_paths) < 3:
        wal.write(Persist(last + 1, HardState(1, 1), run(1, last + 1, last + 4)))
        last += 4
    settle(wal)
    rolled, current = wal.segment_paths[:-1], wal.segment_paths[-1]
    assert os.path.getsize(current) > records_end(wal)
    wal.close()
    for path in rolled:
        with open(path, "rb") as f:
            data = f.read()
        assert data[-1:] != b"\0"  # ends in its last record: ENTRIES data ends in b"x"
    wal, recovered = open_wal(tmp_path, segment_bytes=3000)
    wal.close()
    assert recovered.entries == list(run(1, 1, last))


def _history(data_dir, batches: int) -> tuple[str, list[int]]:
    """A preallocated segment with `batches` records after the first; returns the
    segment and the offsets where each of those records starts."""
    wal, _ = open_wal(data_dir)
    wal.write(Persist(1, HardState(1, 1), run(1, 1, 1)))
    starts = []
    for k in range(batches):
        starts.append(records_end(wal))
        wal.write(Persist(k + 2, None, run(1, 2 + 3 * k, 4 + 3 * k, size=300)))
    settle(wal)
    path = wal.segment_paths[-1]
    wal.close()
    return path, starts


def _zero(path: str, start: int, end: int) -> None:
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(bytes(end - start))


def test_sectors_of_a_write_that_never_reached_the_disk_are_a_torn_write(tmp_path):
    # The crash came while the last records' pages were on their way: the sector
    # holding the start of the fourth never got written, the ones after it did.
    path, starts = _history(tmp_path, 6)
    sector = starts[3] // SECTOR * SECTOR
    _zero(path, sector, sector + SECTOR)
    first_bad = max(k for k in range(len(starts)) if starts[k] <= sector)  # holds the sector's first byte
    with open(path, "rb") as f:
        before = f.read()
    wal, recovered = open_wal(tmp_path)
    wal.close()
    assert recovered.entries == list(run(1, 1, 1) + run(1, 2, 1 + 3 * first_bad, size=300))
    assert recovered.torn_bytes_truncated == len(before) - starts[first_bad]
    with open(path, "rb") as f:
        after = f.read()
    assert after[: starts[first_bad]] == before[: starts[first_bad]]
    assert not any(after[starts[first_bad] :])  # cut off (and zero-filled ahead again)


def test_a_flipped_bit_followed_by_intact_records_is_still_corruption(tmp_path):
    path, starts = _history(tmp_path, 6)
    with open(path, "r+b") as f:
        f.seek(starts[3] + 40)
        byte = f.read(1)
        f.seek(starts[3] + 40)
        f.write(bytes([byte[0] ^ 0x10]))
        f.seek(0)
        before = f.read()
    with pytest.raises(CorruptWALError, match=f"offset {starts[3]} fails its CRC check, yet an intact record follows"):
        open_wal(tmp_path)
    with open(path, "rb") as f:
        assert f.read() == before  # left as it was, for the operator


def test_a_failed_fill_is_not_fatal_writes_go_on_appending(tmp_path, monkeypatch):
    real_pwrite = os.pwrite

    def pwrite(fd, data, offset):
        if not any(memoryview(data)[:64]):  # zeros: a fill
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    wal, _ = open_wal(tmp_path)
    assert "No space left on device" in wal.fill_error
    for k in range(20):
        wal.write(Persist(k + 1, HardState(1, 1), run(1, 3 * k + 1, 3 * k + 3)))
    wal.sync()
    wal.close()
    monkeypatch.undo()
    wal, recovered = WAL.open(tmp_path)
    wal.close()
    assert recovered.entries == list(run(1, 1, 60))


def test_a_write_into_the_range_being_filled_waits_for_the_filler(tmp_path, monkeypatch):
    # The worker's zeros are held back until the writer has had its chance to write
    # into their range: if the writer did not wait, the zeros would land on its records.
    import threading

    real_pwrite = os.pwrite
    writer_done = threading.Event()

    def pwrite(fd, data, offset):
        if threading.current_thread().name == "wal-preallocate":
            writer_done.wait(0.5)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    wal, _ = WAL.open(tmp_path, preallocate_bytes=2**20)  # a first 256 KiB here, the rest in the worker
    wal.write(Persist(1, HardState(1, 1), run(1, 1, 1)))
    assert wal._filler is not None
    wal.write(Persist(2, None, run(1, 2, 1200, size=300)))  # 390 KB: into the worker's range
    writer_done.set()
    wal.close()
    monkeypatch.undo()
    wal, recovered = WAL.open(tmp_path)
    wal.close()
    assert recovered.entries == list(run(1, 1, 1) + run(1, 2, 1200, size=300))


def test_a_last_record_written_up_to_any_byte_recovers_the_records_before_it(tmp_path):
    # In a preallocated segment a write cut short leaves zeros where its bytes did not
    # arrive: the record's first `cut` bytes, then the zeros that were there before.
    path, starts = _history(tmp_path / "src", 2)
    with open(path, "rb") as f:
        full = f.read()
    start, end = starts[1], len(full.rstrip(b"\0"))  # the last record (it ends in b"x")
    for cut in [*range(start, end, 7), end]:
        data_dir = tmp_path / f"cut{cut}"
        (data_dir / "wal").mkdir(parents=True)
        (data_dir / "wal" / os.path.basename(path)).write_bytes(full[:cut] + bytes(len(full) - cut))
        wal, recovered = open_wal(data_dir)
        wal.write(Persist(9, HardState(3, 2), run(3, 5, 5)))
        wal.close()
        expected = list(run(1, 1, 1) + run(1, 2, 4, size=300))
        if cut == end:  # the whole record arrived
            expected += list(run(1, 5, 7, size=300))
        assert recovered.entries == expected, cut
        assert recovered.torn_bytes_truncated == (0 if cut in (start, end) else len(full) - start), cut
        again = reopen_entries(data_dir)
        assert again == expected[:4] + list(run(3, 5, 5)), cut


def reopen_entries(data_dir) -> list[Entry]:
    wal, recovered = WAL.open(data_dir)
    wal.close()
    return recovered.entries


def test_only_a_sector_zero_to_its_end_counts_as_unwritten():
    from abcd.storage.records import unwritten_sector

    def buf(zeros: tuple[int, int]) -> memoryview:
        data = bytearray(b"\x01" * (4 * SECTOR))
        data[zeros[0] : zeros[1]] = bytes(zeros[1] - zeros[0])
        return memoryview(bytes(data))

    assert not unwritten_sector(buf((0, 0)), 10, 4 * SECTOR)
    # A whole sector that never arrived, anywhere in the damaged stretch.
    assert unwritten_sector(buf((SECTOR, 2 * SECTOR)), 10, 4 * SECTOR)
    # The damaged record starts mid-sector, after records that were durable before:
    # the sector's old content is those records, then zeros up to its end.
    assert unwritten_sector(buf((SECTOR + 100, 2 * SECTOR)), SECTOR + 100, 4 * SECTOR)
    assert not unwritten_sector(buf((SECTOR + 100, 2 * SECTOR)), SECTOR + 50, 4 * SECTOR)
    # Zeros in the sector where the next intact record starts (`stop` inside it): that
    # sector was written, so its zeros are data, not a missing write.
    assert not unwritten_sector(buf((SECTOR, 2 * SECTOR - 1)), 10, 2 * SECTOR - 1)
    # Zeros across a boundary that fill neither sector's end-share.
    assert not unwritten_sector(buf((3 * SECTOR - 8, 3 * SECTOR + 8)), 0, 4 * SECTOR)
