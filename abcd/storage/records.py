"""The WAL record codec: framing, CRC, and the payload of each record type.

Framing (all integers little-endian)::

    length u32 | crc32 u32 | type u8 | payload (length bytes)

`crc32` is zlib.crc32 over the type byte followed by the payload, so a record whose
type byte flipped fails its check like any other damage.  Payloads:

    HARD_STATE  current_term u64, voted_for i64 (-1 for None)
    ENTRIES     count u32, then per entry: term u64, index u64, kind u8, data length u32, data
    LOG_RESET   snapshot index u64, snapshot term u64: the log now starts after a snapshot
                installed from the leader; every entry at or below that index is gone

One ENTRIES record carries a whole Persist batch: one header, one CRC and one write per
batch rather than per entry (performance.md: +6-16 % throughput).  Struct objects are
compiled once; encoding builds one list of byte strings and joins it once.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from ..raft.messages import Entry, HardState
from .errors import StorageError

HEADER = struct.Struct("<IIB")
HEADER_SIZE = HEADER.size  # 9

HARD_STATE = 1
ENTRIES = 2
LOG_RESET = 3
RECORD_TYPE_NAMES = {HARD_STATE: "HARD_STATE", ENTRIES: "ENTRIES", LOG_RESET: "LOG_RESET"}

# No record abcd writes is this large (write() refuses such a batch), so a header that
# claims more is damage, never a torn write: torn writes shorten data, they do not
# invent gigabytes.
MAX_PAYLOAD = 2**30

_HARD_STATE = struct.Struct("<Qq")
_COUNT = struct.Struct("<I")
_ENTRY_HEAD = struct.Struct("<QQBI")  # term, index, kind, data length
_ENTRY_HEAD_SIZE = _ENTRY_HEAD.size  # 21
_LOG_RESET = struct.Struct("<QQ")

_TYPE_CRC = {t: zlib.crc32(bytes((t,))) for t in RECORD_TYPE_NAMES}


class RecordFormatError(ValueError):
    """A record passed its CRC but its payload does not decode (a writer bug or a forgery)."""


def record_crc(record_type: int, payload) -> int:
    start = _TYPE_CRC.get(record_type)
    if start is None:
        start = zlib.crc32(bytes((record_type,)))
    return zlib.crc32(payload, start)


def frame(record_type: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), record_crc(record_type, payload), record_type) + payload


# --------------------------------------------------------------------------- encoding


def encode_hard_state(hard_state: HardState) -> bytes:
    voted_for = hard_state.voted_for
    if voted_for is not None and (type(voted_for) is not int or voted_for < 0):
        raise StorageError(f"cannot persist {hard_state!r}: voted_for must be None or a node id >= 0")
    try:
        payload = _HARD_STATE.pack(hard_state.current_term, -1 if voted_for is None else voted_for)
    except struct.error as e:
        raise StorageError(f"cannot persist {hard_state!r}: {e}") from None
    return frame(HARD_STATE, payload)


def encode_entries(entries: Sequence[Entry]) -> tuple[bytes, bytes]:
    """The ENTRIES record for a non-empty, contiguous batch, as (header, payload).

    Returned in two pieces so the caller can hand both to os.writev without copying a
    large payload once more.
    """
    parts = [_COUNT.pack(len(entries))]
    append = parts.append
    pack = _ENTRY_HEAD.pack
    expected = entries[0].index
    try:
        for entry in entries:
            if entry.index != expected:
                raise StorageError(
                    f"cannot persist entries: index {entry.index} follows {expected - 1} "
                    "(a batch must be contiguous)"
                )
            data = entry.data
            append(pack(entry.term, expected, entry.kind, len(data)))
            append(data)
            expected += 1
    except struct.error as e:
        raise StorageError(f"cannot persist entry {entry.index}: {e}") from None
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise StorageError(
            f"cannot persist a batch of {len(payload)} bytes in one record (limit {MAX_PAYLOAD}); "
            "split the batch"
        )
    return HEADER.pack(len(payload), record_crc(ENTRIES, payload), ENTRIES), payload


def encode_log_reset(snapshot_index: int, snapshot_term: int) -> bytes:
    try:
        return frame(LOG_RESET, _LOG_RESET.pack(snapshot_index, snapshot_term))
    except struct.error as e:
        raise StorageError(f"cannot persist a log reset at {snapshot_index}/{snapshot_term}: {e}") from None


# --------------------------------------------------------------------------- decoding


def decode_hard_state(payload) -> HardState:
    if len(payload) != _HARD_STATE.size:
        raise RecordFormatError(f"HARD_STATE payload is {len(payload)} bytes, expected {_HARD_STATE.size}")
    current_term, voted_for = _HARD_STATE.unpack(payload)
    if voted_for < -1:
        raise RecordFormatError(f"HARD_STATE has voted_for {voted_for}")
    return HardState(current_term, None if voted_for == -1 else voted_for)


def entries_span(payload) -> tuple[int, int]:
    """(the first index, the count) of an ENTRIES payload, without decoding its entries."""
    if len(payload) < _COUNT.size + _ENTRY_HEAD_SIZE:
        raise RecordFormatError(f"ENTRIES payload is {len(payload)} bytes, too short for its count and one entry")
    (count,) = _COUNT.unpack_from(payload, 0)
    _term, index, _kind, _length = _ENTRY_HEAD.unpack_from(payload, _COUNT.size)
    if count == 0 or index < 1:
        raise RecordFormatError(f"ENTRIES record of {count} entries starts at index {index}")
    return index, count


def decode_entries(payload) -> list[Entry]:
    """The entries of an ENTRIES payload; checks the batch is non-empty and contiguous."""
    size = len(payload)
    if size < _COUNT.size:
        raise RecordFormatError(f"ENTRIES payload is {size} bytes, too short for its count")
    (count,) = _COUNT.unpack_from(payload, 0)
    if count == 0:
        raise RecordFormatError("ENTRIES record holds no entries")
    entries = []
    append = entries.append
    unpack = _ENTRY_HEAD.unpack_from
    pos = _COUNT.size
    expected = None
    for n in range(count):
        if pos + _ENTRY_HEAD_SIZE > size:
            raise RecordFormatError(f"ENTRIES payload ends inside entry {n} of {count}")
        term, index, kind, length = unpack(payload, pos)
        pos += _ENTRY_HEAD_SIZE
        end = pos + length
        if end > size:
            raise RecordFormatError(f"entry {index} claims {length} data bytes past the payload end")
        if expected is None:
            if index < 1:
                raise RecordFormatError(f"ENTRIES record starts at index {index} (indexes start at 1)")
        elif index != expected:
            raise RecordFormatError(f"entry index {index} follows {expected - 1} inside one batch")
        expected = index + 1
        append(Entry(term, index, bytes(payload[pos:end]), kind))
        pos = end
    if pos != size:
        raise RecordFormatError(f"ENTRIES payload has {size - pos} bytes after its {count} entries")
    return entries


def decode_log_reset(payload) -> tuple[int, int]:
    if len(payload) != _LOG_RESET.size:
        raise RecordFormatError(f"LOG_RESET payload is {len(payload)} bytes, expected {_LOG_RESET.size}")
    return _LOG_RESET.unpack(payload)


# --------------------------------------------------------------------------- scanning


def scan(buf: memoryview) -> tuple[list[tuple[int, int, memoryview]], int, tuple[str, bool] | None]:
    """Split a segment's bytes into records.

    Returns (records, end, damage): the (offset, type, payload) of every intact record
    in order, the offset just past the last intact one, and None if that is the end of
    the buffer, or else (why the record at `end` is not intact, whether a torn write
    could look like that).  Whether it is a torn final write is for the caller to decide.
    """
    records = []
    size = len(buf)
    pos = 0
    unpack = HEADER.unpack_from
    while pos < size:
        if size - pos < HEADER_SIZE:
            return records, pos, (f"is a truncated header ({size - pos} of {HEADER_SIZE} bytes)", True)
        length, crc, record_type = unpack(buf, pos)
        if length > MAX_PAYLOAD:
            return records, pos, (f"claims an impossible length of {length} bytes", False)
        end = pos + HEADER_SIZE + length
        if end > size:
            return records, pos, (f"claims {length} payload bytes but only {size - pos - HEADER_SIZE} remain", True)
        payload = buf[pos + HEADER_SIZE : end]
        if record_crc(record_type, payload) != crc:
            return records, pos, ("fails its CRC check", True)
        records.append((pos, record_type, payload))
        pos = end
    return records, pos, None


# A record may end in a few zero bytes (a small integer's high bytes), never in this many.
_TRAILING_ZEROS_MAX = 64


def data_end(buf: memoryview, offset: int) -> int:
    """The offset just past the last non-zero byte at or after `offset` (`offset` if none).

    A preallocated segment is zero-filled ahead of the writes: what follows is unused.
    """
    return offset + len(buf[offset:].tobytes().rstrip(b"\0"))


def intact_record_after(buf: memoryview, offset: int) -> int | None:
    """The offset of the first intact record (right length, right CRC) after `offset`.

    Used to tell a torn tail from damage in the middle of the last segment: a torn write
    is the last thing written, so if an intact record follows the damaged one, the damage
    is either corruption (e.g. a flipped bit in a length field, and truncating there
    would throw away good records) or, in a preallocated segment, sectors of a write the
    crash cut short that never reached the disk (`unwritten_sector`).  Only the data part
    of the buffer is searched: records never sit in the zeros after it.
    """
    stop = min(len(buf), data_end(buf, offset) + _TRAILING_ZEROS_MAX)
    unpack = HEADER.unpack_from
    for pos in range(offset + 1, stop - HEADER_SIZE + 1):
        if buf[pos + 8] not in RECORD_TYPE_NAMES:  # cheap filter on the type byte
            continue
        length, crc, record_type = unpack(buf, pos)
        end = pos + HEADER_SIZE + length
        if end <= stop and record_crc(record_type, buf[pos + HEADER_SIZE : end]) == crc:
            return pos
    return None


SECTOR = 512


def unwritten_sector(buf: memoryview, start: int, stop: int) -> bool:
    """Whether a sector ending inside buf[start:stop] is all zeros from `start` (or from
    its own beginning) to its end.

    A preallocated segment holds zeros where nothing was written yet.  A crash while
    written pages were still on their way to the disk can leave any of their sectors
    unwritten, so a write cut short shows as a damaged record with a zero-filled sector
    in it, possibly followed by a later record that did arrive.  Neither was
    acknowledged: an fsync covering the later one would have covered the damaged one
    too.  A sector that holds the start of the record after `stop` was written (that
    record is intact), so it does not count.  Damage with real bytes in every sector
    (a flipped bit) is not this; the record bytes abcd writes (JSON and short
    integers) never hold a whole sector of zeros.
    """
    pos = start
    while True:
        end = (pos // SECTOR + 1) * SECTOR
        if end > stop:
            return False
        if buf[pos:end].tobytes().count(0) == end - pos:
            return True
        pos = end
