"""Recovery after crashes and damage: a torn last write is cut off; anything else
stops the node with the file and offset, and leaves the files untouched."""
from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abcd.raft.effects import Persist
from abcd.raft.messages import Entry, HardState
from abcd.storage import WAL, CorruptWALError, StorageError
from abcd.storage.records import ENTRIES, HARD_STATE, encode_entries, encode_hard_state, frame

SEG1 = "00000000000000000001.wal"


def run(term: int, first: int, last: int, tag: bytes = b"v") -> tuple[Entry, ...]:
    return tuple(Entry(term, i, tag + b"%d" % i) for i in range(first, last + 1))


def reopen(data_dir, **kw):
    wal, recovered = WAL.open(data_dir, **kw)
    wal.close()
    return recovered


def write_history(data_dir, last: str, **kw) -> tuple[str, int, int]:
    """Write a small history; returns (last segment, offset of the last record, file end)."""
    with WAL.open(data_dir, **kw)[0] as wal:
        wal.write(Persist(1, HardState(1, 1), run(1, 1, 3)))
        wal.write(Persist(2, None, run(1, 4, 6, b"w" * 30)))
        segment = wal.segment_paths[-1]
        start = os.path.getsize(segment)
        if last == "entries":
            wal.write(Persist(3, None, run(1, 7, 9)))
        elif last == "hard_state":
            wal.write(Persist(3, HardState(2, None), ()))
        else:  # "rolled": this write opens a new segment: its hard state record, then the entries
            wal.write(Persist(3, None, run(2, 7, 9)))
            assert wal.segment_paths[-1] != segment
            segment, start = wal.segment_paths[-1], len(encode_hard_state(HardState(1, 1)))
        end = os.path.getsize(segment)
    return segment, start, end


@pytest.mark.parametrize("last", ["entries", "hard_state", "rolled"])
def test_a_torn_last_record_is_cut_off_at_every_byte_offset(tmp_path, last):
    kw = {"segment_bytes": 150} if last == "rolled" else {}
    segment, start, end = write_history(tmp_path / "src", last, **kw)
    with open(segment, "rb") as f:
        full = f.read()
    assert end - start > 20
    # In a rolled segment, also cut inside the hard state record that opens it.
    for cut in range(0 if last == "rolled" else start, end):
        data_dir = tmp_path / f"cut{cut}"
        wal_dir = data_dir / "wal"
        wal_dir.mkdir(parents=True)
        for name in os.listdir(os.path.dirname(segment)):
            src = os.path.join(os.path.dirname(segment), name)
            with open(src, "rb") as f:
                content = f.read() if src != segment else full[:cut]
            (wal_dir / name).write_bytes(content)

        wal, recovered = WAL.open(data_dir)
        assert recovered.entries == list(run(1, 1, 3) + run(1, 4, 6, b"w" * 30)), cut
        assert recovered.hard_state == HardState(1, 1)
        assert recovered.torn_bytes_truncated == cut - (start if cut >= start else 0)
        # Appending after recovery lands after the last good record, and replays.
        wal.write(Persist(4, HardState(3, 2), run(3, 7, 7)))
        wal.close()
        again = reopen(data_dir)
        assert again.torn_bytes_truncated == 0
        assert again.hard_state == HardState(3, 2)
        assert again.entries == list(run(1, 1, 3) + run(1, 4, 6, b"w" * 30) + run(3, 7, 7))


def test_an_emptied_last_segment_restarts_with_the_hard_state_so_compaction_keeps_it(tmp_path):
    segment, _, _ = write_history(tmp_path, "rolled", segment_bytes=150)
    os.truncate(segment, 5)  # the whole first write of the new segment was torn
    with WAL.open(tmp_path)[0] as wal:
        assert wal.compact(6) == 1  # only the new segment remains
    recovered = reopen(tmp_path)
    assert recovered.hard_state == HardState(1, 1)
    assert recovered.first_index == 7 and recovered.entries == []


def test_a_zero_filled_tail_is_unused_space(tmp_path):
    # Preallocated space, or a crashed append that the file system shows as zeros: no
    # data was cut.  Without preallocation the file is cut back to its last record.
    segment, _, end = write_history(tmp_path, "entries")
    with open(segment, "ab") as f:
        f.write(bytes(4096))
    recovered = reopen(tmp_path)
    assert recovered.torn_bytes_truncated == 0
    assert recovered.last_index == 9
    assert os.path.getsize(segment) == end


def test_a_bad_crc_before_the_tail_stops_recovery_naming_file_and_offset(tmp_path):
    segment, start, end = write_history(tmp_path, "entries")
    with open(segment, "r+b") as f:
        f.seek(start - 3)  # inside the data of the record before the last one
        byte = f.read(1)
        f.seek(start - 3)
        f.write(bytes([byte[0] ^ 0x40]))
    with pytest.raises(CorruptWALError) as info:
        WAL.open(tmp_path)
    message = str(info.value)
    assert os.path.join("wal", SEG1) in message
    assert info.value.path == segment
    damaged = info.value.offset
    assert 0 < damaged < start
    assert f"record at offset {damaged} fails its CRC check, yet an intact record follows" in message
    assert message.endswith("refusing to start (committed data could be lost)")
    assert "committed data could be lost" in message
    assert os.path.getsize(segment) == end  # nothing was truncated


def test_a_damaged_length_that_runs_past_eof_is_not_mistaken_for_a_torn_write(tmp_path):
    segment, start, end = write_history(tmp_path, "entries")
    with open(segment, "rb") as f:
        data = bytearray(f.read())
    # The second record (after the 25-byte hard state record) gets a huge length.
    data[25 + 2] = 0x30
    with open(segment, "wb") as f:
        f.write(data)
    with pytest.raises(CorruptWALError, match=r"record at offset 25 claims .* yet an intact record follows at offset"):
        WAL.open(tmp_path)
    assert os.path.getsize(segment) == end


def test_an_impossible_length_at_the_tail_is_corruption(tmp_path):
    segment, start, end = write_history(tmp_path, "entries")
    with open(segment, "r+b") as f:
        f.seek(start + 3)
        f.write(b"\xff")  # length >= 2**31
    with pytest.raises(CorruptWALError, match=rf"record at offset {start} claims an impossible length"):
        WAL.open(tmp_path)


def test_damage_in_an_earlier_segment_is_never_a_torn_write(tmp_path):
    write_history(tmp_path, "rolled", segment_bytes=150)
    first = tmp_path / "wal" / SEG1
    size = os.path.getsize(first)
    os.truncate(first, size - 1)
    with pytest.raises(CorruptWALError, match=r"not in the last segment, so not a torn write") as info:
        WAL.open(tmp_path)
    assert info.value.path == str(first)
    assert SEG1 in str(info.value)


def test_a_missing_middle_segment_is_corruption(tmp_path):
    with WAL.open(tmp_path, segment_bytes=100)[0] as wal:
        for i in range(1, 8):
            wal.write(Persist(i, None, run(1, i, i, b"z" * 60)))
        paths = wal.segment_paths
    assert len(paths) >= 3
    os.unlink(paths[1])
    with pytest.raises(CorruptWALError, match=r"a segment is missing or was renamed"):
        WAL.open(tmp_path)


def test_a_zero_length_segment_that_is_not_the_last_is_corruption(tmp_path):
    write_history(tmp_path, "rolled", segment_bytes=150)
    os.truncate(tmp_path / "wal" / SEG1, 0)
    with pytest.raises(CorruptWALError, match=rf"{SEG1}: segment holds no intact record"):
        WAL.open(tmp_path)


def test_a_random_bytes_segment_gives_a_clear_error(tmp_path):
    write_history(tmp_path, "rolled", segment_bytes=150)
    rng = random.Random(7)
    (tmp_path / "wal" / SEG1).write_bytes(bytes(rng.randrange(256) for _ in range(500)))
    with pytest.raises(CorruptWALError, match=rf"{SEG1}: record at offset 0 .*refusing to start"):
        WAL.open(tmp_path)


def test_a_misnamed_segment_file_is_refused(tmp_path):
    WAL.open(tmp_path)[0].close()
    (tmp_path / "wal" / "12.wal").write_bytes(b"")
    with pytest.raises(StorageError, match=r"12\.wal: not a WAL segment name"):
        WAL.open(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=300))
def test_any_bytes_as_the_only_segment_recover_or_raise_corrupt_wal_error(tmp_path_factory, garbage):
    data_dir = tmp_path_factory.mktemp("garbage")
    (data_dir / "wal").mkdir()
    (data_dir / "wal" / SEG1).write_bytes(garbage)
    try:
        wal, recovered = WAL.open(data_dir)
    except CorruptWALError as e:
        assert SEG1 in str(e) and "refusing to start" in str(e)
        assert os.path.getsize(data_dir / "wal" / SEG1) == len(garbage)
    else:
        wal.close()
        assert recovered.entries == []
        assert recovered.torn_bytes_truncated == (len(garbage) if any(garbage) else 0)


def _craft(data_dir, *records: bytes) -> str:
    (data_dir / "wal").mkdir(parents=True)
    path = data_dir / "wal" / SEG1
    path.write_bytes(b"".join(records))
    return str(path)


def test_a_record_with_a_valid_crc_but_unknown_type_is_corruption(tmp_path):
    hs = encode_hard_state(HardState(1, None))
    _craft(tmp_path, hs, frame(9, b"hello"), hs)
    with pytest.raises(CorruptWALError, match=rf"record at offset {len(hs)} passes its CRC check but is malformed: unknown record type 9"):
        WAL.open(tmp_path)


def test_an_entries_record_leaving_a_gap_is_corruption(tmp_path):
    hs = encode_hard_state(HardState(1, None))
    first = b"".join(encode_entries(run(1, 1, 3)))
    gap = b"".join(encode_entries(run(1, 6, 7)))
    _craft(tmp_path, hs, first, gap)
    with pytest.raises(CorruptWALError, match=rf"offset {len(hs) + len(first)} starts at index 6 but the log ends at index 3"):
        WAL.open(tmp_path)


def test_a_malformed_entries_payload_is_corruption(tmp_path):
    hs = encode_hard_state(HardState(1, None))
    _craft(tmp_path, hs, frame(ENTRIES, b"\x02\x00\x00\x00" + b"\x00" * 10), hs)
    with pytest.raises(CorruptWALError, match=r"malformed: ENTRIES payload ends inside entry 0 of 2"):
        WAL.open(tmp_path)


def test_a_segment_must_start_with_its_hard_state(tmp_path):
    _craft(tmp_path, b"".join(encode_entries(run(1, 1, 2))), frame(HARD_STATE, bytes(16)))
    with pytest.raises(CorruptWALError, match=r"offset 0 is not the HARD_STATE record"):
        WAL.open(tmp_path)


# --------------------------------------------------------------------------- entries a snapshot covers


def write_batches(data_dir, **kw) -> None:
    """Entries 1..30 in batches of 5, the last two batches overwritten from 21 on (a
    follower replacing a conflicting suffix), over small segments."""
    with WAL.open(data_dir, **kw)[0] as wal:
        for seq, first in enumerate(range(1, 31, 5), start=1):
            wal.write(Persist(seq, HardState(1, 1), run(1, first, first + 4)))
        wal.write(Persist(9, HardState(2, None), run(2, 21, 27, b"x")))


@pytest.mark.parametrize("covered", [1, 5, 6, 11, 20, 21, 22, 27, 40])
def test_entries_a_snapshot_covers_are_skipped_and_the_rest_is_the_same(tmp_path, covered):
    write_batches(tmp_path, segment_bytes=200)
    whole = reopen(tmp_path)
    skipped = reopen(tmp_path, covered=covered)
    assert skipped.first_index <= min(covered, whole.last_index + 1)
    assert skipped.last_index == whole.last_index == 27 and skipped.hard_state == whole.hard_state
    assert skipped.entries_after(covered) == whole.entries_after(covered)
    if covered <= whole.last_index:  # the entry at the snapshot's index is kept (its term is checked)
        assert skipped.entries[covered - skipped.first_index] == whole.entries[covered - whole.first_index]
    if covered > 6:
        assert skipped.first_index > 1  # whole batches below it were not decoded


def test_a_damaged_record_among_the_skipped_ones_is_still_refused(tmp_path):
    write_batches(tmp_path, segment_bytes=100_000)
    path = os.path.join(tmp_path, "wal", SEG1)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        at = data.index(b"v3")  # inside the first batch, which covered=25 skips
        data[at] ^= 0xFF
        f.seek(0)
        f.write(data)
    with pytest.raises(CorruptWALError, match="CRC"):
        reopen(tmp_path, covered=25)
