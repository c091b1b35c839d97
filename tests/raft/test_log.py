"""RaftLog: the in-memory log after a snapshot (indexes from 1, contiguous)."""
from __future__ import annotations

import gc

import pytest

from abcd.raft.log import RaftLog
from abcd.raft.messages import Entry

from .cores import log_of


def terms(log: RaftLog) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in log.entries]


def test_empty_log():
    log = RaftLog()
    assert (log.first_index, log.last_index, log.last_term) == (1, 0, 0)
    assert log.term_at(0) == 0  # the empty prefix matches anything (§5.3 base case)
    assert log.term_at(1) is None


def test_entries_must_be_contiguous_after_the_snapshot():
    with pytest.raises(ValueError, match="not contiguous at index 3"):
        RaftLog(0, 0, [Entry(1, 1), Entry(1, 3)])
    with pytest.raises(ValueError, match="not contiguous at index 1"):
        RaftLog(5, 1, [Entry(1, 1)])


def test_term_at_inside_before_and_after_the_log():
    log = RaftLog(2, 1, [Entry(2, 3), Entry(3, 4)])
    assert [log.term_at(i) for i in range(0, 6)] == [None, None, 1, 2, 3, None]
    assert log.matches(3, 2) and not log.matches(3, 1) and not log.matches(9, 3)
    assert (log.first_index, log.last_index, log.last_term) == (3, 4, 3)


def test_append_at_the_end_extends_the_log():
    log = RaftLog(0, 0, log_of(1))
    assert log.append([Entry(1, 2), Entry(2, 3)]) is None
    assert terms(log) == [(1, 1), (2, 1), (3, 2)]
    assert log.append([]) is None and log.last_index == 3


def test_append_inside_the_log_truncates_the_suffix():
    """§5.3: new entries replace everything from their first index on."""
    log = RaftLog(0, 0, log_of(1, 1, 1, 1))
    assert log.append([Entry(2, 2)]) == 2
    assert terms(log) == [(1, 1), (2, 2)]


@pytest.mark.parametrize("start", [4, 1], ids=["gap-after-end", "inside-snapshot"])
def test_append_outside_the_log_is_refused(start):
    log = RaftLog(1, 1, [Entry(1, 2)])
    with pytest.raises(ValueError, match=f"cannot append at {start}: log spans \\(1, 2\\]"):
        log.append([Entry(1, start)])
    assert terms(log) == [(2, 1)]


def test_slice_returns_half_open_range():
    log = RaftLog(0, 0, log_of(1, 1, 2, 2, 3))
    assert [e.index for e in log.slice(2, 5, 100, 0)] == [2, 3, 4]
    assert [e.index for e in log.slice(4, 99, 100, 0)] == [4, 5]
    assert log.slice(6, 9, 100, 0) == ()


def test_slice_caps_entry_count():
    log = RaftLog(0, 0, log_of(1, 1, 1, 1, 1))
    assert [e.index for e in log.slice(1, 6, 2, 0)] == [1, 2]


def test_slice_caps_bytes_but_returns_at_least_one_entry():
    log = RaftLog(0, 0, [Entry(1, i, b"x" * 10) for i in range(1, 6)])
    assert [e.index for e in log.slice(1, 6, 100, 25)] == [1, 2]
    assert [e.index for e in log.slice(1, 6, 100, 5)] == [1]  # one entry even if too big
    assert [e.index for e in log.slice(1, 6, 100, 0)] == [1, 2, 3, 4, 5]  # 0: no byte cap


def test_first_index_of_term_stops_at_floor():
    log = RaftLog(0, 0, log_of(1, 2, 2, 2, 3))
    assert log.first_index_of_term(4, 0) == 2
    assert log.first_index_of_term(4, 2) == 3  # committed entries are not in conflict
    assert log.first_index_of_term(5, 0) == 5


def test_last_index_of_term():
    log = RaftLog(0, 0, log_of(1, 2, 2, 4))
    assert log.last_index_of_term(2) == 3
    assert log.last_index_of_term(4) == 4
    assert log.last_index_of_term(3) is None
    assert log.last_index_of_term(5) is None


@pytest.mark.parametrize(
    "other, up_to_date",
    [((2, 3), True), ((3, 3), True), ((1, 3), False), ((1, 4), True), ((9, 2), False)],
)
def test_is_up_to_date(other, up_to_date):
    """§5.4.1: compare last terms first, then lengths.  Our log ends at 2@3."""
    log = RaftLog(0, 0, log_of(1, 3))
    index, term = other
    assert log.is_up_to_date(term, index) is up_to_date


def test_compact_drops_the_prefix_and_keeps_the_anchor():
    log = RaftLog(0, 0, log_of(1, 1, 2, 2))
    log.compact(2, 1)
    assert (log.snapshot_index, log.snapshot_term, log.first_index) == (2, 1, 3)
    assert terms(log) == [(3, 2), (4, 2)]
    assert log.term_at(2) == 1 and log.term_at(1) is None
    log.compact(1, 1)  # at or below the snapshot: nothing to do
    assert log.snapshot_index == 2


def test_compact_to_a_snapshot_the_log_does_not_match_empties_it():
    """A snapshot from the leader that disagrees with (or lies beyond) our log replaces it."""
    log = RaftLog(0, 0, log_of(1, 1, 2))
    log.compact(5, 3)
    assert (log.snapshot_index, log.last_index, log.last_term, log.entries) == (5, 5, 3, [])


def test_slice_below_the_first_index_is_refused():
    """A compacted prefix cannot be sliced; silently returning entries from the *end*
    of the log would send the wrong entries."""
    log = RaftLog(5, 2, [Entry(2, i) for i in range(6, 11)])
    with pytest.raises((ValueError, IndexError)):
        log.slice(3, 11, 100, 0)


def test_entry_outside_the_log_is_refused():
    log = RaftLog(0, 0, log_of(1, 1, 2))
    with pytest.raises((ValueError, IndexError)):
        log.entry(0)


def test_followers_at_the_same_point_get_the_same_entry_objects_until_the_log_changes_there():
    # The transport encodes a slice once for every follower it goes to, recognizing it
    # by the identity of its entries (codec.EncodeCache).
    log = RaftLog(0, 0, log_of(1, 1, 2, 2))
    first = log.slice(2, 5, 10, 0)
    assert log.slice(2, 5, 10, 0) is first and [e.index for e in first] == [2, 3, 4]
    log.append([Entry(2, 5, b"e")])  # more at the end: the same entries, the same objects
    assert log.slice(2, 5, 10, 0) is first
    log.append([Entry(3, 3, b"x")])  # a new entry 3: new objects with the new contents
    again = log.slice(2, 5, 10, 0)
    assert again is not first and [(e.index, e.term, e.data) for e in again] == [(2, 1, b""), (3, 3, b"x")]
    log.compact(2, 1)
    assert log.slice(3, 5, 10, 0)[0].data == b"x"


def test_between_entry_and_the_config_entries_read_the_columns_back():
    log = RaftLog(3, 1, [Entry(1, 4, b"a"), Entry(2, 5, b"c", 1), Entry(2, 6, b"b"), Entry(2, 7, b"d", 1)])
    assert log.between(0, 100) == log.entries == [
        Entry(1, 4, b"a"), Entry(2, 5, b"c", 1), Entry(2, 6, b"b"), Entry(2, 7, b"d", 1)
    ]
    assert log.between(5, 7) == [Entry(2, 5, b"c", 1), Entry(2, 6, b"b")] and log.between(7, 7) == []
    assert log.entry(6) == Entry(2, 6, b"b")
    assert log.indexes_of_kind(1) == [5, 7] and log.indexes_of_kind(0) == [4, 6]
    log.compact(5, 2)
    assert log.indexes_of_kind(1) == [7]


def test_the_log_keeps_no_object_per_entry_that_the_garbage_collector_walks():
    # A busy node holds up to a snapshot's worth of entries; as tracked objects they made
    # up most of every young collection (docs/performance.md).
    def tracked_objects(log: RaftLog) -> int:
        held = [obj for obj in gc.get_referents(log) if gc.is_tracked(obj) and not isinstance(obj, type)]
        return len(held) + sum(gc.is_tracked(item) for obj in held if isinstance(obj, list) for item in obj)

    small = RaftLog(0, 0, [Entry(1, i, b"command %d" % i) for i in range(1, 11)])
    big = RaftLog(0, 0, [Entry(1, i, b"command %d" % i) for i in range(1, 20_001)])
    assert tracked_objects(big) == tracked_objects(small) <= 3  # the three columns
