"""The in-memory Raft log: entries after a (possibly empty) snapshot.

Indexes start at 1.  The log holds entries[0].index == snapshot_index + 1, so the
first index can move forward when a snapshot compacts the prefix.
Invariant: entries[i].index == snapshot_index + 1 + i (contiguous).
"""
from __future__ import annotations

from itertools import accumulate
from bisect import bisect_right
from operator import attrgetter

from .messages import Entry

_data = attrgetter("data")


class RaftLog:
    __slots__ = ("snapshot_index", "snapshot_term", "entries")

    def __init__(self, snapshot_index: int = 0, snapshot_term: int = 0, entries=()) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self.entries: list[Entry] = list(entries)
        for offset, entry in enumerate(self.entries):
            if entry.index != snapshot_index + 1 + offset:
                raise ValueError(f"log entries are not contiguous at index {entry.index}")

    @property
    def first_index(self) -> int:
        return self.snapshot_index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot_index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index`, or None if it is compacted or beyond the end."""
        if index == self.snapshot_index:
            return self.snapshot_term
        offset = index - self.snapshot_index - 1
        if 0 <= offset < len(self.entries):
            return self.entries[offset].term
        return None

    def matches(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def entry(self, index: int) -> Entry:
        if not self.snapshot_index < index <= self.last_index:
            raise IndexError(f"no entry {index}: log spans ({self.snapshot_index}, {self.last_index}]")
        return self.entries[index - self.snapshot_index - 1]

    def is_up_to_date(self, last_log_term: int, last_log_index: int) -> bool:
        """§5.4.1: the other log is at least as up-to-date as ours."""
        ours = self.last_term
        return last_log_term > ours or (last_log_term == ours and last_log_index >= self.last_index)

    def append(self, entries) -> int | None:
        """Append, replacing any suffix from entries[0].index on.

        Returns the index the log was truncated from, or None if nothing was removed.
        """
        if not entries:
            return None
        start = entries[0].index
        if start > self.last_index + 1 or start <= self.snapshot_index:
            raise ValueError(f"cannot append at {start}: log spans ({self.snapshot_index}, {self.last_index}]")
        truncated = None
        if start <= self.last_index:
            truncated = start
            del self.entries[start - self.snapshot_index - 1 :]
        self.entries.extend(entries)
        return truncated

    def slice(self, lo: int, hi: int, max_count: int, max_bytes: int) -> tuple[Entry, ...]:
        """Entries [lo, hi) capped by count and total data size (always at least one)."""
        if lo <= self.snapshot_index:
            raise ValueError(f"cannot slice from {lo}: entries up to {self.snapshot_index} are compacted")
        begin = lo - self.snapshot_index - 1
        end = min(hi - self.snapshot_index - 1, begin + max_count, len(self.entries))
        if begin >= end:
            return ()
        chosen = self.entries[begin:end]
        if max_bytes <= 0:
            return tuple(chosen)
        sizes = list(accumulate(map(len, map(_data, chosen))))
        if sizes[-1] > max_bytes:
            chosen = chosen[: max(1, bisect_right(sizes, max_bytes))]
        return tuple(chosen)

    def first_index_of_term(self, index: int, floor: int) -> int:
        """The first index of the run of entries having the term of `index`, not below `floor`."""
        term = self.term_at(index)
        while index - 1 > max(floor, self.snapshot_index) and self.term_at(index - 1) == term:
            index -= 1
        return index

    def last_index_of_term(self, term: int) -> int | None:
        """The last index holding `term`, or None (used by the leader for fast backtracking)."""
        for entry in reversed(self.entries):
            if entry.term == term:
                return entry.index
            if entry.term < term:
                return None
        return None

    def reset(self, index: int, term: int) -> None:
        """Discard every entry: the log now starts after a snapshot at index/term."""
        self.entries = []
        self.snapshot_index, self.snapshot_term = index, term

    def compact(self, index: int, term: int) -> None:
        """Drop entries up to `index` (now covered by a snapshot taken at index/term)."""
        if index <= self.snapshot_index:
            return
        if self.term_at(index) == term:
            del self.entries[: index - self.snapshot_index]
        else:
            self.entries = []
        self.snapshot_index, self.snapshot_term = index, term
