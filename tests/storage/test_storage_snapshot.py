"""Snapshot files: atomic, checksummed, the newest intact one wins, old ones pruned."""
from __future__ import annotations

import os

import pytest

from abcd.raft.messages import Snapshot
from abcd.storage import StorageError, load_latest_snapshot, prune_snapshots, save_snapshot

META = {"voters": frozenset({3, 1, 2}), "learners": [4], "applied_term": 2}


def flip_byte(path, offset: int) -> None:
    """Flip one bit of the byte at `offset` (negative: from the end)."""
    with open(path, "r+b") as f:
        f.seek(offset, os.SEEK_SET if offset >= 0 else os.SEEK_END)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 1]))


def test_save_and_load_round_trip(tmp_path):
    path = save_snapshot(tmp_path, 2, 10, b"state machine bytes", META)
    assert path == os.path.join(str(tmp_path), "snap", "00000000000000000002-00000000000000000010.snap")
    assert os.listdir(tmp_path / "snap") == [os.path.basename(path)]  # no temp file left
    loaded = load_latest_snapshot(tmp_path)
    assert (loaded.term, loaded.index, loaded.data, loaded.path) == (2, 10, b"state machine bytes", path)
    assert loaded.meta == {"voters": [1, 2, 3], "learners": [4], "applied_term": 2}
    assert loaded.skipped == ()
    assert loaded.raft_snapshot() == Snapshot(10, 2, frozenset({1, 2, 3}), frozenset({4}))


def test_no_snapshot_directory_means_none(tmp_path):
    assert load_latest_snapshot(tmp_path) is None
    (tmp_path / "snap").mkdir()
    assert load_latest_snapshot(tmp_path) is None


def test_the_newest_by_index_wins(tmp_path):
    save_snapshot(tmp_path, 3, 5, b"five", META)
    save_snapshot(tmp_path, 2, 12, b"twelve", META)
    save_snapshot(tmp_path, 2, 9, b"nine", META)
    assert load_latest_snapshot(tmp_path).data == b"twelve"


# The header's term field, the first byte of the meta, the last byte of the data.
@pytest.mark.parametrize("where", [16, 44, -1])
def test_a_damaged_newest_snapshot_is_skipped_and_reported(tmp_path, where):
    save_snapshot(tmp_path, 1, 5, b"older state", META)
    newest = save_snapshot(tmp_path, 1, 8, b"newer state", META)
    flip_byte(newest, where)
    loaded = load_latest_snapshot(tmp_path)
    assert loaded.index == 5 and loaded.data == b"older state"
    assert len(loaded.skipped) == 1
    assert loaded.skipped[0].startswith(newest + ":")


def test_a_damaged_header_length_is_caught(tmp_path):
    save_snapshot(tmp_path, 1, 5, b"older", META)
    newest = save_snapshot(tmp_path, 1, 8, b"newer", META)
    with open(newest, "r+b") as f:
        f.seek(36)  # the data length field
        f.write(b"\x01")
    loaded = load_latest_snapshot(tmp_path)
    assert loaded.index == 5
    assert "header says" in loaded.skipped[0]


def test_truncated_misnamed_and_foreign_files_are_skipped_with_reasons(tmp_path):
    save_snapshot(tmp_path, 1, 5, b"good", META)
    snap = tmp_path / "snap"
    (snap / "00000000000000000001-00000000000000000009.snap").write_bytes(b"ABCDSNAP\x01")
    (snap / "00000000000000000001-00000000000000000008.snap").write_bytes(b"NOTASNAP" + bytes(60))
    (snap / "latest.snap").write_bytes(b"")
    os.link(snap / "00000000000000000001-00000000000000000005.snap", snap / "00000000000000000001-00000000000000000007.snap")
    loaded = load_latest_snapshot(tmp_path)
    assert loaded.index == 5
    reasons = " | ".join(loaded.skipped)
    assert "latest.snap: not named <term>-<index>.snap" in reasons
    assert "00000000000000000009.snap: 9 bytes, shorter than the 44-byte header" in reasons
    assert "00000000000000000008.snap: bad magic" in reasons
    assert "00000000000000000007.snap: header says term 1 index 5, unlike its name" in reasons


def test_when_every_snapshot_is_damaged_loading_refuses(tmp_path):
    path = save_snapshot(tmp_path, 1, 5, b"only one", META)
    flip_byte(path, -1)
    with pytest.raises(StorageError, match=r"no intact snapshot to start from; .*fails its CRC check"):
        load_latest_snapshot(tmp_path)


def test_save_is_atomic_and_durable(tmp_path, monkeypatch):
    first = save_snapshot(tmp_path, 1, 5, b"first", META)
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(os.fstat(fd).st_ino), real_fsync(fd)))

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_snapshot(tmp_path, 1, 5, b"second", META)
    assert os.listdir(tmp_path / "snap") == [os.path.basename(first)]  # temp removed
    assert load_latest_snapshot(tmp_path).data == b"first"
    assert len(fsynced) == 1  # the temp file's data was fsynced before the rename
    monkeypatch.setattr(os, "replace", os.rename)
    fsynced.clear()
    save_snapshot(tmp_path, 1, 6, b"third", META)
    assert os.stat(tmp_path / "snap").st_ino in fsynced  # the rename was made durable


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(StorageError, match="not JSON-serialisable"):
        save_snapshot(tmp_path, 1, 1, b"", {"voters": object()})
    with pytest.raises(TypeError, match="meta must be a dict"):
        save_snapshot(tmp_path, 1, 1, b"", [1, 2])
    with pytest.raises(ValueError, match="index must be an int"):
        save_snapshot(tmp_path, 1, -1, b"", {})


def test_raft_snapshot_needs_voters(tmp_path):
    save_snapshot(tmp_path, 1, 1, b"", {})
    with pytest.raises(StorageError, match="no valid voters/learners"):
        load_latest_snapshot(tmp_path).raft_snapshot()


def test_prune_keeps_the_newest(tmp_path):
    paths = [save_snapshot(tmp_path, 1, i, b"%d" % i, META) for i in (3, 10, 7, 12)]
    (tmp_path / "snap" / ".00000000000000000001-00000000000000000013.snap.tmp").write_bytes(b"partial")
    removed = prune_snapshots(tmp_path, keep=2)
    assert sorted(removed) == sorted([paths[0], paths[2], str(tmp_path / "snap" / ".00000000000000000001-00000000000000000013.snap.tmp")])
    assert sorted(os.listdir(tmp_path / "snap")) == sorted(os.path.basename(p) for p in (paths[1], paths[3]))
    assert load_latest_snapshot(tmp_path).index == 12
    assert prune_snapshots(tmp_path, keep=2) == []
    with pytest.raises(ValueError, match="keep must be an int >= 1"):
        prune_snapshots(tmp_path, keep=0)
