"""The in-memory Raft log: entries after a (possibly empty) snapshot.

Indexes start at 1.  The log holds the entries snapshot_index + 1 .. last_index, so the
first index can move forward when a snapshot compacts the prefix.

The entries are kept as three parallel columns (terms, commands, kinds), not as Entry
objects: a busy node holds up to a snapshot's worth of entries (100,000 by default),
and as objects each one was walked by the garbage collector's young collections, most
of the objects in them (their pauses were the largest of a member under load;
docs/performance.md).  Ints in an array and bytes in a list are not tracked by the
collector.  Entry objects are made when asked for, and short-lived.

Invariant: len(_terms) == len(_data) == len(_kinds); the entry at offset i has index
snapshot_index + 1 + i.
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
from itertools import accumulate
from operator import itemgetter

from .messages import Entry, entry_from_tuple

# Entry is a NamedTuple: fields by position are cheaper than by name.
_term, _data, _kind = itemgetter(0), itemgetter(2), itemgetter(3)


class RaftLog:
    __slots__ = ("snapshot_index", "snapshot_term", "_terms", "_data", "_kinds", "_last_slice")

    def __init__(self, snapshot_index: int = 0, snapshot_term: int = 0, entries=()) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self._terms = array("Q")
        self._data: list[bytes] = []
        self._kinds = array("b")
        # The last slice handed out, so that followers at the same point get the same
        # Entry objects (the transport encodes them once for all: codec.EncodeCache).
        self._last_slice: tuple[tuple[int, int, int], tuple[Entry, ...]] | None = None
        entries = list(entries)
        for offset, entry in enumerate(entries):
            if entry.index != snapshot_index + 1 + offset:
                raise ValueError(f"log entries are not contiguous at index {entry.index}")
        self._extend(entries)

    @property
    def first_index(self) -> int:
        return self.snapshot_index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot_index + len(self._terms)

    @property
    def last_term(self) -> int:
        return self._terms[-1] if self._terms else self.snapshot_term

    @property
    def entries(self) -> list[Entry]:
        """Every entry, as new Entry objects (for tests and rare scans)."""
        return self.between(self.first_index, self.last_index + 1)

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index`, or None if it is compacted or beyond the end."""
        if index == self.snapshot_index:
            return self.snapshot_term
        offset = index - self.snapshot_index - 1
        if 0 <= offset < len(self._terms):
            return self._terms[offset]
        return None

    def matches(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def entry(self, index: int) -> Entry:
        if not self.snapshot_index < index <= self.last_index:
            raise IndexError(f"no entry {index}: log spans ({self.snapshot_index}, {self.last_index}]")
        offset = index - self.snapshot_index - 1
        return Entry(self._terms[offset], index, self._data[offset], self._kinds[offset])

    def between(self, lo: int, hi: int) -> list[Entry]:
        """The entries [lo, hi), clipped to what the log holds, as new Entry objects."""
        begin = max(lo - self.snapshot_index - 1, 0)
        end = min(hi - self.snapshot_index - 1, len(self._terms))
        if begin >= end:
            return []
        first = self.snapshot_index + 1 + begin
        indexes = range(first, first + end - begin)
        columns = zip(self._terms[begin:end], indexes, self._data[begin:end], self._kinds[begin:end])
        return list(map(entry_from_tuple, columns))

    def indexes_of_kind(self, kind: int) -> list[int]:
        """The indexes of the entries of `kind` (configuration entries are rare)."""
        kinds, wanted = self._kinds.tobytes(), kind.to_bytes(1, "little", signed=True)
        found, offset = [], kinds.find(wanted)
        while offset >= 0:
            found.append(self.snapshot_index + 1 + offset)
            offset = kinds.find(wanted, offset + 1)
        return found

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
            self._cut(start - self.snapshot_index - 1)
        self._extend(entries)
        return truncated

    def _extend(self, entries) -> None:
        self._terms.extend(map(_term, entries))
        self._data.extend(map(_data, entries))
        self._kinds.extend(map(_kind, entries))

    def _cut(self, offset: int) -> None:
        """Drop the entries from `offset` on."""
        del self._terms[offset:]
        del self._data[offset:]
        del self._kinds[offset:]
        self._last_slice = None

    def slice(self, lo: int, hi: int, max_count: int, max_bytes: int) -> tuple[Entry, ...]:
        """Entries [lo, hi) capped by count and total data size (always at least one)."""
        if lo <= self.snapshot_index:
            raise ValueError(f"cannot slice from {lo}: entries up to {self.snapshot_index} are compacted")
        begin = lo - self.snapshot_index - 1
        end = min(hi - self.snapshot_index - 1, begin + max_count, len(self._terms))
        if begin >= end:
            return ()
        # The same request as the last one (the next follower at the same point): the
        # same objects, without sizing the commands again.
        key = (lo, end, max_bytes)
        last = self._last_slice
        if last is not None and last[0] == key:
            return last[1]
        if max_bytes > 0:
            sizes = list(accumulate(map(len, self._data[begin:end])))
            if sizes[-1] > max_bytes:
                end = begin + max(1, bisect_right(sizes, max_bytes))
        chosen = tuple(self.between(lo, lo + end - begin))
        self._last_slice = (key, chosen)
        return chosen

    def first_index_of_term(self, index: int, floor: int) -> int:
        """The first index of the run of entries having the term of `index`, not below `floor`."""
        term = self.term_at(index)
        while index - 1 > max(floor, self.snapshot_index) and self.term_at(index - 1) == term:
            index -= 1
        return index

    def last_index_of_term(self, term: int) -> int | None:
        """The last index holding `term`, or None (used by the leader for fast backtracking)."""
        terms = self._terms
        for offset in range(len(terms) - 1, -1, -1):
            if terms[offset] == term:
                return self.snapshot_index + 1 + offset
            if terms[offset] < term:
                return None
        return None

    def reset(self, index: int, term: int) -> None:
        """Discard every entry: the log now starts after a snapshot at index/term."""
        self._cut(0)
        self.snapshot_index, self.snapshot_term = index, term

    def compact(self, index: int, term: int) -> None:
        """Drop entries up to `index` (now covered by a snapshot taken at index/term)."""
        if index <= self.snapshot_index:
            return
        if self.term_at(index) == term:
            count = index - self.snapshot_index
            del self._terms[:count]
            del self._data[:count]
            del self._kinds[:count]
            self._last_slice = None
        else:
            self._cut(0)
        self.snapshot_index, self.snapshot_term = index, term
