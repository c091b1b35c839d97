"""The packed snapshot format (version 3): round trips, and damaged bytes refused saying why."""
from __future__ import annotations

import json
import struct
from array import array

import pytest
from kvtest_helpers import Log

from abcd.kv import KVStore, SnapshotError
from abcd.kv import snapshot_packed
from abcd.kv.snapshot import encode_json

CONFIG = {"history_limit": None, "max_clients": 4, "client_window": 4}
PREFIX = struct.Struct("<8sII")
LENGTH = struct.Struct("<Q")


def build() -> Log:
    """Keys of one version and of several, a tombstone still in the history, a key
    deleted and written again, leases, a retried request, the compaction point moved."""
    log = Log(**CONFIG)
    log.apply(op="lease_grant", ttl=10)
    log.put("a", "1", lease=1)
    log.put("b", "é\n\"", request_id="c:1")
    log.put("a", "2")
    log.delete("b")
    log.put("c", "3", lease=1)
    log.put("b", "again")
    log.put("d", "")
    log.delete("d")
    log.store.compact(3)
    log.put("a", "4" * 300)
    return log


def observe(store: KVStore) -> dict:
    revisions = range(max(store.compact_revision, 1), store.current_revision + 1)
    return {
        "revision": store.current_revision,
        "applied_index": store.applied_index,
        "leases": store.leases(),
        "gets": {(key, rev): store.get(key, rev) for key in "abcd" for rev in revisions},
        "ranges": {rev: store.range("", revision=rev) for rev in revisions},
        "events": store.events_since(max(store.compact_revision, 1)),
    }


def unpack(data: bytes) -> tuple[dict, list[bytes]]:
    _magic, _version, meta_length = PREFIX.unpack_from(data)
    offset = PREFIX.size
    meta = json.loads(data[offset : offset + meta_length])
    offset += meta_length
    sections = []
    while offset < len(data):
        (length,) = LENGTH.unpack_from(data, offset)
        offset += LENGTH.size
        sections.append(data[offset : offset + length])
        offset += length
    return meta, sections


def pack(meta: dict, sections: list[bytes], version: int = 3) -> bytes:
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    out = [PREFIX.pack(b"ABCD-KV\0", version, len(meta_bytes)), meta_bytes]
    for section in sections:
        out += [LENGTH.pack(len(section)), section]
    return b"".join(out)


def test_a_packed_snapshot_restores_to_the_same_state_and_the_same_bytes():
    original = build().store
    data = original.snapshot()
    assert data.startswith(b"ABCD-KV\0") and struct.unpack_from("<I", data, 8) == (3,)
    restored = KVStore.restore(data, **CONFIG)
    assert observe(restored) == observe(original)
    assert restored.snapshot() == data
    # The same state as the JSON format of version 2 gives.
    assert observe(KVStore.restore(encode_json(original.capture()), **CONFIG)) == observe(original)


def test_the_sections_hold_the_documented_columns():
    meta, sections = unpack(build().store.snapshot())
    assert len(sections) == len(snapshot_packed.SECTIONS) == 7
    keys = json.loads(sections[0])
    assert keys == ["a", "b", "c", "d"]
    counts = array("B", sections[2])
    assert meta["keys"] == 4 and meta["versions"] == sum(counts) == len(json.loads(sections[1]))
    assert meta["widths"] == [1, 1, 1, 1, 1]  # every number here is below 256
    # a: its version at the compaction point and two after; b: put, tombstone, put again; d: put, tombstone
    assert list(counts) == [3, 3, 1, 2]


def test_each_integer_column_takes_the_fewest_bytes_that_hold_its_largest_number():
    for largest, width in [(0, 1), (255, 1), (256, 2), (65_535, 2), (65_536, 4), (2**32 - 1, 4), (2**32, 8)]:
        column = snapshot_packed._narrowest(array("Q", [1, largest]))
        assert column.itemsize == width and list(column) == [1, largest]


def test_a_store_of_a_thousand_keys_round_trips_across_slices():
    log = Log(**CONFIG)
    for i in range(3 * snapshot_packed.SLICE + 5):
        log.put(f"k{i:05d}", str(i))
    for i in range(0, 3 * snapshot_packed.SLICE, 7):
        log.put(f"k{i:05d}", "again")
    data = log.store.snapshot()
    restored = KVStore.restore(data, **CONFIG)
    assert restored.snapshot() == data
    assert restored.range("k") == log.store.range("k")
    assert restored.get("k00007", revision=9)["value"] == "7"


def test_a_truncated_snapshot_is_refused_wherever_it_is_cut():
    data = build().store.snapshot()
    for cut in range(len(data)):
        with pytest.raises(SnapshotError):
            KVStore.restore(data[:cut], **CONFIG)
    with pytest.raises(SnapshotError, match=r"packed snapshot is truncated: values needs \d+ bytes at offset \d+"):
        meta, sections = unpack(data)
        KVStore.restore(data[: data.index(sections[1]) + 3], **CONFIG)


def change_meta(**changes):
    def change(meta, sections):
        meta.update(changes)

    return change


def set_section(i: int, value):
    def change(meta, sections):
        sections[i] = value if isinstance(value, bytes) else json.dumps(value).encode()

    return change


def swap_first_two_keys(meta, sections):
    keys = json.loads(sections[0])
    keys[0], keys[1] = keys[1], keys[0]
    sections[0] = json.dumps(keys).encode()


def reverse_versions_of_a(meta, sections):
    # a's three versions are the first three values and rows of every column.
    for i in (1,):
        values = json.loads(sections[i])
        values[0:3] = values[0:3][::-1]
        sections[i] = json.dumps(values).encode()
    for i in range(3, 7):
        column = array("B", sections[i])
        column[0:3] = column[0:3][::-1]
        sections[i] = column.tobytes()


@pytest.mark.parametrize(
    "change,message",
    [
        (change_meta(keys=5), "its meta announces 5 keys and 9 versions, its sections hold 4 and 9"),
        (change_meta(widths=[1, 1, 3, 1, 1]), "its meta's widths are not 5 of 1, 2, 4 and 8"),
        (change_meta(revision=-1), "revision must be a non-negative integer"),
        (set_section(0, b"[\"a\","), "section keys is not valid JSON"),
        (set_section(0, {"a": 1}), "its keys and values must be JSON arrays"),
        (set_section(0, ["a", "b", "c", 4]), "keys and values must be strings"),
        (set_section(0, ["a", "b", "c", "c"]), "the keys are not in strictly increasing order"),
        (swap_first_two_keys, "the keys are not in strictly increasing order"),
        (set_section(2, bytes([3, 3, 1, 0])), "the version counts do not add up"),
        (set_section(2, bytes([3, 3, 1, 3])), "the version counts do not add up"),
        (set_section(3, bytes(7)), "the columns' lengths do not match"),
        (set_section(5, b"\x00\x00\x00"), "the columns' lengths do not match"),
        (reverse_versions_of_a, "the versions of key 'a' are not in revision order"),
    ],
)
def test_a_damaged_packed_snapshot_is_refused_with_a_reason(change, message):
    meta, sections = unpack(build().store.snapshot())
    change(meta, sections)
    with pytest.raises(SnapshotError) as info:
        KVStore.restore(pack(meta, sections), **CONFIG)
    assert message in str(info.value)


def test_bytes_after_the_last_section_or_an_unknown_version_are_refused():
    data = build().store.snapshot()
    with pytest.raises(SnapshotError, match="3 bytes follow its last section"):
        KVStore.restore(data + b"abc", **CONFIG)
    meta, sections = unpack(data)
    with pytest.raises(SnapshotError, match=r"packed snapshot format version 4 is not supported \(this abcd reads 3\)"):
        KVStore.restore(pack(meta, sections, version=4), **CONFIG)
    meta["widths"] = [2, 1, 1, 1, 1]
    with pytest.raises(SnapshotError, match="section counts is 3 bytes, not a whole number of 2"):
        KVStore.restore(pack(meta, sections[:2] + [sections[2][:3]] + sections[3:]), **CONFIG)
