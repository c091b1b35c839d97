"""meta.json: atomic replacement, a clear error for a damaged file."""
from __future__ import annotations

import os

import pytest

from abcd.storage import StorageError, read_meta, write_meta


def test_round_trip_and_missing(tmp_path):
    assert read_meta(tmp_path) is None
    path = write_meta(tmp_path / "node", {"node_id": 1, "cluster_id": "c-1", "port": 2380})
    assert path == os.path.join(str(tmp_path / "node"), "meta.json")
    assert read_meta(tmp_path / "node") == {"node_id": 1, "cluster_id": "c-1", "port": 2380}
    write_meta(tmp_path / "node", {"node_id": 2})
    assert read_meta(tmp_path / "node") == {"node_id": 2}
    assert os.listdir(tmp_path / "node") == ["meta.json"]


def test_a_failed_replace_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    write_meta(tmp_path, {"node_id": 1})
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        write_meta(tmp_path, {"node_id": 2})
    assert fsynced  # the new content was fsynced before the rename was attempted
    assert read_meta(tmp_path) == {"node_id": 1}
    assert os.listdir(tmp_path) == ["meta.json"]


def test_write_makes_the_rename_durable(tmp_path, monkeypatch):
    inodes = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (inodes.append(os.fstat(fd).st_ino), real_fsync(fd)))
    write_meta(tmp_path, {"node_id": 1})
    assert inodes[-1] == os.stat(tmp_path).st_ino


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"node_id": 1,\n', r"meta\.json: invalid JSON at line 2 column 1"),
        (b"", r"meta\.json: invalid JSON at line 1 column 1"),
        (b"\xff\xfe garbage", r"meta\.json: (not UTF-8 text|invalid JSON)"),
        (b"[1, 2]", r"meta\.json: expected a JSON object, found list"),
    ],
)
def test_a_damaged_file_gives_a_clear_error(tmp_path, content, message):
    (tmp_path / "meta.json").write_bytes(content)
    with pytest.raises(StorageError, match=message):
        read_meta(tmp_path)


def test_unserialisable_meta_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(StorageError, match="not JSON-serialisable"):
        write_meta(tmp_path, {"when": object()})
    assert read_meta(tmp_path) is None
