"""Reading a WAL back: list the segments, replay their records, find a torn tail.

Recovery rules (docs/storage.md has the operator's view):

* Segments are replayed in name order.  Each one is named after the log's next index
  when it was created, so a segment whose name is not the index the replay has
  reached means a segment is missing or was renamed: corruption.
* Records replay exactly as Persist effects were executed: HARD_STATE replaces the
  hard state; ENTRIES replaces the log from its first index on (a follower overwriting
  a conflicting suffix, §5.3); LOG_RESET empties the log after an installed snapshot.
  An ENTRIES record that starts beyond the log's end leaves a gap: corruption.
* Only the last segment can end in a torn write, because the writer fsyncs a segment
  (cut to its last record) before it creates the next one.  There, zeros after the last
  intact record are unused space (a preallocated segment, or a crashed append that the
  file system shows as zeros).  Damage at offset p is a torn tail if it could come from
  a write cut short (not an impossible length) and either no intact record follows it
  or a sector of it is all zeros (pages of an unacknowledged write that never reached
  a preallocated segment); the file is then truncated to p.  Any other damage raises
  CorruptWALError naming the file and offset: starting without those records could
  lose committed entries.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..raft.messages import Entry, HardState
from .errors import CorruptWALError, StorageError
from .records import (
    ENTRIES,
    HARD_STATE,
    LOG_RESET,
    RecordFormatError,
    decode_entries,
    decode_hard_state,
    decode_log_reset,
    entries_span,
    data_end,
    intact_record_after,
    scan,
    unwritten_sector,
)

SEGMENT_SUFFIX = ".wal"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.wal$")


def segment_name(first_index: int) -> str:
    return f"{first_index:020d}{SEGMENT_SUFFIX}"


@dataclass(slots=True)
class Segment:
    """One segment file.  `first_index` is the log's next index when it was created."""

    first_index: int
    path: str
    # The highest entry index any record in this segment wrote (or reset the log to).
    # compact() may delete a prefix of segments only if all of theirs are covered.
    max_index: int = 0


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a WAL replay gives back.

    Invariant: entries[i].index == first_index + i; with no entries, first_index is
    the index the next entry will take, so last_index is always first_index + len - 1.
    """

    hard_state: HardState
    entries: list[Entry]
    first_index: int
    torn_bytes_truncated: int = 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.entries) - 1

    def entries_after(self, snapshot_index: int) -> list[Entry]:
        """The entries a Raft log keeps on top of a snapshot taken at `snapshot_index`.

        The WAL drops only whole segments, so it may still hold entries the snapshot
        covers; those are skipped.  If the WAL starts after snapshot_index + 1 the
        entries in between exist nowhere (an older snapshot was loaded, or a segment
        was deleted): that raises rather than hand Raft a log with a hole.
        """
        if self.first_index > snapshot_index + 1:
            raise StorageError(
                f"the WAL starts at index {self.first_index} but the snapshot ends at index "
                f"{snapshot_index}: entries {snapshot_index + 1}..{self.first_index - 1} are missing"
            )
        return self.entries[snapshot_index + 1 - self.first_index :]


def list_segments(wal_dir: str) -> list[Segment]:
    segments = []
    for name in sorted(os.listdir(wal_dir)):
        if not name.endswith(SEGMENT_SUFFIX):
            continue  # temp files and the like are not ours to judge
        path = os.path.join(wal_dir, name)
        match = _SEGMENT_NAME.match(name)
        if match is None or int(match.group(1)) < 1:
            raise StorageError(
                f"{path}: not a WAL segment name (expected <first-index>{SEGMENT_SUFFIX} "
                "with 20 digits, first index >= 1); move it out of the WAL directory"
            )
        segments.append(Segment(int(match.group(1)), path))
    return segments


def replay(segments: list[Segment], covered: int = 0) -> tuple[Recovered, int]:
    """Replay `segments` (non-empty, in order).  Returns (recovered, good_size), where
    good_size is the end of the last segment's last intact record: the WAL writes on
    from there, after truncating the file to it if torn bytes follow.

    `covered`: the index of the snapshot the node starts from.  An ENTRIES record whose
    entries all lie below it is not decoded (its CRC is still checked): the snapshot
    holds their effect, and segments kept for lagging followers and for retention
    hold hundreds of thousands of them (decoding them was a second of a restart at a
    million keys).  The log then starts at or before `covered`, never after it.

    Fills in each segment's max_index as a side effect.
    """
    hard_state = HardState()
    entries: list[Entry] = []
    first_index = segments[0].first_index
    torn = 0
    good_size = 0
    for k, segment in enumerate(segments):
        path = segment.path
        is_last = k == len(segments) - 1
        next_index = first_index + len(entries)
        if k and segment.first_index != next_index:
            raise CorruptWALError(
                f"{path}: segment starts at index {segment.first_index} but the segments before it "
                f"end at index {next_index - 1} (a segment is missing or was renamed); "
                "refusing to start (committed data could be lost)",
                path=path,
            )
        with open(path, "rb") as f:
            buf = memoryview(f.read())
        records, good_size, damage = scan(buf)
        if damage is not None:
            torn = _torn_tail_or_raise(path, buf, good_size, damage, is_last)
        if not records and not is_last:
            raise CorruptWALError(
                f"{path}: segment holds no intact record, but only the last segment may be empty "
                "(each segment is fsynced before the next is created); "
                "refusing to start (committed data could be lost)",
                path=path,
                offset=0,
            )
        if records and records[0][1] != HARD_STATE:
            raise CorruptWALError.at_record(path, 0, "is not the HARD_STATE record every segment starts with")
        for offset, record_type, payload in records:
            try:
                if record_type == ENTRIES and covered:
                    start, count = entries_span(payload)
                    last = start + count - 1
                    if last < covered:
                        next_index = first_index + len(entries)
                        if start > next_index:
                            raise CorruptWALError.at_record(
                                path, offset, f"starts at index {start} but the log ends at index {next_index - 1} (a gap)"
                            )
                        # The log up to `last` is the snapshot's: it starts after it.
                        entries = []
                        first_index = last + 1
                        segment.max_index = max(segment.max_index, last)
                        continue
                if record_type == ENTRIES:
                    batch = decode_entries(payload)
                    start = batch[0].index
                    next_index = first_index + len(entries)
                    if start > next_index:
                        raise CorruptWALError.at_record(
                            path, offset, f"starts at index {start} but the log ends at index {next_index - 1} (a gap)"
                        )
                    if start <= first_index:
                        # Replaces everything we hold; after compaction the record may
                        # reach back below the oldest segment left.
                        entries = batch
                        first_index = start
                    else:
                        del entries[start - first_index :]
                        entries.extend(batch)
                    segment.max_index = max(segment.max_index, batch[-1].index)
                elif record_type == HARD_STATE:
                    hard_state = decode_hard_state(payload)
                elif record_type == LOG_RESET:
                    snapshot_index, _snapshot_term = decode_log_reset(payload)
                    entries = []
                    first_index = snapshot_index + 1
                    segment.max_index = max(segment.max_index, snapshot_index)
                else:
                    raise RecordFormatError(f"unknown record type {record_type}")
            except RecordFormatError as e:
                raise CorruptWALError.at_record(path, offset, f"passes its CRC check but is malformed: {e}") from None
    return Recovered(hard_state, entries, first_index, torn), good_size


def _torn_tail_or_raise(path: str, buf: memoryview, offset: int, damage: tuple[str, bool], is_last: bool) -> int:
    """The number of bytes to truncate at `offset` (0 for a tail of zeros, which is
    unused space); raises if the damage is not a torn tail."""
    reason, tearable = damage
    if not is_last:
        raise CorruptWALError.at_record(path, offset, f"{reason} (not in the last segment, so not a torn write)")
    end = data_end(buf, offset)
    if end == offset:
        return 0
    if not tearable:
        raise CorruptWALError.at_record(path, offset, reason)
    follower = intact_record_after(buf, offset)
    if follower is not None and not unwritten_sector(buf, offset, follower):
        raise CorruptWALError.at_record(
            path, offset, f"{reason}, yet an intact record follows at offset {follower} (so not a torn write)"
        )
    return len(buf) - offset
