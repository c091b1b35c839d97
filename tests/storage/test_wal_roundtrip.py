"""The WAL gives back what was written: hard states, entries, overwritten suffixes,
across segment rolls and compaction."""
from __future__ import annotations

import os

import pytest

from abcd.raft.effects import Persist
from abcd.raft.messages import ENTRY_CONFIG, Entry, HardState
from abcd.storage import WAL, StorageError


def run(term: int, first: int, last: int, tag: bytes = b"v") -> tuple[Entry, ...]:
    return tuple(Entry(term, i, tag + b"%d" % i) for i in range(first, last + 1))


def reopen(data_dir, **kw):
    wal, recovered = WAL.open(data_dir, **kw)
    wal.close()
    return recovered


def test_fresh_directory_recovers_an_empty_log_and_creates_the_first_segment(tmp_path):
    wal, recovered = WAL.open(tmp_path / "node")
    wal.close()
    assert recovered.hard_state == HardState()
    assert recovered.entries == []
    assert recovered.first_index == 1 and recovered.last_index == 0
    assert recovered.torn_bytes_truncated == 0
    assert os.listdir(tmp_path / "node" / "wal") == ["00000000000000000001.wal"]


def test_hard_state_and_entries_survive_reopen(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.write(Persist(1, HardState(1, None), ()))
    wal.write(Persist(2, HardState(1, 3), run(1, 1, 3)))
    wal.write(Persist(3, None, (Entry(1, 4, b"cfg", ENTRY_CONFIG), Entry(1, 5, b""))))
    wal.write(Persist(4, HardState(2, None), ()))
    wal.sync()
    wal.close()

    recovered = reopen(tmp_path)
    assert recovered.hard_state == HardState(2, None)
    assert recovered.entries == [*run(1, 1, 3), Entry(1, 4, b"cfg", ENTRY_CONFIG), Entry(1, 5, b"")]
    assert recovered.first_index == 1 and recovered.last_index == 5


def test_voted_for_zero_is_not_confused_with_none(tmp_path):
    with WAL.open(tmp_path)[0] as wal:
        wal.write(Persist(1, HardState(7, 0), ()))
    assert reopen(tmp_path).hard_state == HardState(7, 0)


def test_entries_overwrite_the_log_from_their_first_index(tmp_path):
    with WAL.open(tmp_path)[0] as wal:
        wal.write(Persist(1, HardState(1, 1), run(1, 1, 10)))
        # A new leader of term 2 disagrees from index 6 on (§5.3): the follower's suffix goes.
        wal.write(Persist(2, HardState(2, 2), run(2, 6, 7, b"new")))
        assert wal.last_index == 7
        wal.write(Persist(3, None, run(2, 8, 8, b"new")))
    recovered = reopen(tmp_path)
    assert recovered.entries == [*run(1, 1, 5), *run(2, 6, 8, b"new")]
    assert recovered.hard_state == HardState(2, 2)


def test_overwrite_from_the_very_first_index_and_then_reopen_twice(tmp_path):
    with WAL.open(tmp_path)[0] as wal:
        wal.write(Persist(1, None, run(1, 1, 4)))
        wal.write(Persist(2, None, run(3, 1, 2, b"x")))
    assert reopen(tmp_path).entries == list(run(3, 1, 2, b"x"))
    with WAL.open(tmp_path)[0] as wal:
        assert wal.last_index == 2
        wal.write(Persist(3, None, run(3, 3, 3, b"y")))
    assert reopen(tmp_path).entries == [*run(3, 1, 2, b"x"), *run(3, 3, 3, b"y")]


def test_write_refuses_a_gap_and_a_non_contiguous_batch_without_writing_anything(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.write(Persist(1, None, run(1, 1, 3)))
    with pytest.raises(StorageError, match=r"starting at index 5: the log ends at index 3"):
        wal.write(Persist(2, HardState(9, None), run(1, 5, 6)))
    with pytest.raises(StorageError, match=r"index 6 follows 4 \(a batch must be contiguous\)"):
        wal.write(Persist(3, HardState(9, None), (Entry(1, 4), Entry(1, 6))))
    with pytest.raises(StorageError, match=r"voted_for must be None or a node id"):
        wal.write(Persist(4, HardState(1, -5), ()))
    with pytest.raises(StorageError, match=r"cannot persist entry 4"):
        wal.write(Persist(5, None, (Entry(-1, 4),)))
    # The WAL is still usable and none of the refused persists left a trace.
    wal.write(Persist(6, None, run(1, 4, 4)))
    wal.close()
    recovered = reopen(tmp_path)
    assert recovered.entries == list(run(1, 1, 4))
    assert recovered.hard_state == HardState()


def test_segments_roll_at_segment_bytes_and_reopen_sees_everything(tmp_path):
    with WAL.open(tmp_path, segment_bytes=300)[0] as wal:
        for i in range(1, 41):
            wal.write(Persist(i, HardState(i // 10 + 1, None) if i % 10 == 0 else None, run(1, i, i, b"x" * 40)))
        paths = wal.segment_paths
    names = sorted(os.listdir(tmp_path / "wal"))
    assert len(names) > 5
    assert names == [os.path.basename(p) for p in paths]
    # Each segment is named after the index of the first entry it may hold.
    starts = [int(n[:20]) for n in names]
    assert starts[0] == 1 and starts == sorted(set(starts))
    recovered = reopen(tmp_path, segment_bytes=300)
    assert recovered.entries == list(run(1, 1, 40, b"x" * 40))
    assert recovered.hard_state == HardState(5, None)


def test_overwrite_reaching_back_into_an_earlier_segment(tmp_path):
    with WAL.open(tmp_path, segment_bytes=200)[0] as wal:
        for i in range(1, 21):
            wal.write(Persist(i, None, run(1, i, i, b"a" * 30)))
        assert len(wal.segment_paths) > 3
        # Truncate far back, below the start of the current segment.
        wal.write(Persist(21, HardState(2, 2), run(2, 3, 4, b"b")))
        for i in range(5, 30):
            wal.write(Persist(22 + i, None, run(2, i, i, b"c" * 30)))
        names = [os.path.basename(p) for p in wal.segment_paths]
    assert names == sorted(names) and len(set(names)) == len(names)
    recovered = reopen(tmp_path, segment_bytes=200)
    assert recovered.entries == [*run(1, 1, 2, b"a" * 30), *run(2, 3, 4, b"b"), *run(2, 5, 29, b"c" * 30)]


def test_compact_deletes_only_segments_wholly_covered_and_recovery_still_works(tmp_path):
    with WAL.open(tmp_path, segment_bytes=250)[0] as wal:
        for i in range(1, 31):
            wal.write(Persist(i, HardState(3, 1) if i == 1 else None, run(3, i, i, b"d" * 40)))
        before = wal.segment_paths
        starts = [int(os.path.basename(p)[:20]) for p in before]
        # A snapshot at index 12: segments whose entries all lie at or below 12 can go.
        removed = wal.compact(12)
        after = wal.segment_paths
        assert removed == len(before) - len(after) > 0
        assert after == before[removed:]
        # The first segment kept holds index 13 (it was not wholly covered)...
        assert starts[removed] <= 13
        # ...every deleted one ended at or before 12, and no more could have gone.
        assert starts[removed] - 1 <= 12
        assert starts[removed + 1] > 13
        assert sorted(os.listdir(tmp_path / "wal")) == [os.path.basename(p) for p in after]
        wal.write(Persist(31, None, run(3, 31, 31, b"d" * 40)))
    recovered = reopen(tmp_path, segment_bytes=250)
    assert recovered.first_index == starts[removed]
    assert recovered.entries == list(run(3, starts[removed], 31, b"d" * 40))
    assert recovered.entries_after(12) == list(run(3, 13, 31, b"d" * 40))
    # The hard state lived only in the first, deleted segment; each segment starts with it.
    assert recovered.hard_state == HardState(3, 1)


def test_compact_with_keep_leaves_that_many_segments_even_when_more_are_covered(tmp_path):
    with WAL.open(tmp_path, segment_bytes=250)[0] as wal:
        for i in range(1, 31):
            wal.write(Persist(i, HardState(3, 1) if i == 1 else None, run(3, i, i, b"d" * 40)))
        before = wal.segment_paths
        assert len(before) > 6
        assert wal.compact(30, keep=4) == len(before) - 4  # all but the last are covered
        assert wal.segment_paths == before[-4:]
        assert wal.compact(30, keep=4) == 0
        assert wal.compact(30, keep=0) == 3  # no floor: every covered one, never the last
    recovered = reopen(tmp_path, segment_bytes=250)
    assert recovered.entries[-1] == run(3, 30, 30, b"d" * 40)[0]


def test_compact_never_deletes_the_last_segment_and_hard_state_survives(tmp_path):
    with WAL.open(tmp_path, segment_bytes=100)[0] as wal:
        wal.write(Persist(1, HardState(4, 2), run(4, 1, 5, b"e" * 30)))
        wal.write(Persist(2, None, run(4, 6, 6)))  # rolls: the last segment starts at 6
        assert len(wal.segment_paths) == 2
        assert wal.compact(10**6) == 1
        assert len(wal.segment_paths) == 1
        assert wal.compact(10**6) == 0
    recovered = reopen(tmp_path)
    assert recovered.hard_state == HardState(4, 2)
    assert recovered.entries == list(run(4, 6, 6))
    assert recovered.first_index == 6


def test_compact_keeps_a_segment_whose_entries_reach_past_the_snapshot(tmp_path):
    with WAL.open(tmp_path, segment_bytes=100)[0] as wal:
        wal.write(Persist(1, None, run(1, 1, 5, b"f" * 30)))
        wal.write(Persist(2, None, run(1, 6, 6)))
        assert wal.compact(4) == 0  # segment 1 holds 5, which the snapshot does not cover
        assert wal.compact(5) == 1


def test_entries_after_refuses_a_hole_between_snapshot_and_log(tmp_path):
    with WAL.open(tmp_path, segment_bytes=100)[0] as wal:
        wal.write(Persist(1, None, run(1, 1, 5, b"g" * 30)))
        wal.write(Persist(2, None, run(1, 6, 7)))
        wal.compact(5)
    recovered = reopen(tmp_path)
    assert recovered.entries_after(5) == list(run(1, 6, 7))
    assert recovered.entries_after(9) == []
    with pytest.raises(StorageError, match=r"entries 4\.\.5 are missing"):
        recovered.entries_after(3)


def test_reset_log_after_an_installed_snapshot(tmp_path):
    with WAL.open(tmp_path, segment_bytes=150)[0] as wal:
        wal.write(Persist(1, HardState(1, 1), run(1, 1, 8, b"h" * 10)))
        wal.reset_log(100, 5)
        assert wal.last_index == 100
        with pytest.raises(StorageError, match="starting at index 102"):
            wal.write(Persist(2, None, run(5, 102, 102)))
        wal.write(Persist(3, HardState(5, None), run(5, 101, 110, b"i" * 20)))
        assert len(wal.segment_paths) >= 2
        assert wal.compact(100) >= 1
    recovered = reopen(tmp_path)
    assert recovered.first_index == 101
    assert recovered.entries == list(run(5, 101, 110, b"i" * 20))
    assert recovered.hard_state == HardState(5, None)


def test_empty_persist_writes_nothing(tmp_path):
    with WAL.open(tmp_path)[0] as wal:
        size = os.path.getsize(wal.segment_paths[0])
        wal.write(Persist(1, None, ()))
        assert os.path.getsize(wal.segment_paths[0]) == size


def test_closed_wal_refuses_writes_and_close_is_idempotent(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.close()
    wal.close()
    with pytest.raises(StorageError, match="is closed"):
        wal.write(Persist(1, None, run(1, 1, 1)))
    with pytest.raises(StorageError, match="is closed"):
        wal.sync()


def test_bad_segment_bytes_is_refused(tmp_path):
    with pytest.raises(ValueError, match="segment_bytes must be a positive int"):
        WAL.open(tmp_path, segment_bytes=0)
