"""Backup files (abcd/storage/backup.py): what is read back is exactly what was
described, and anything else is refused saying what is wrong."""
from __future__ import annotations

import pytest

from abcd.storage.backup import BackupError, describe, read_backup

DOCUMENT = b'{"format":"abcd-kv","version":2}'


def write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_a_backup_reads_back_as_described(tmp_path):
    info = describe(DOCUMENT, revision=7, index=12, keys=3)
    path = write(tmp_path / "b", info.header() + DOCUMENT)
    assert read_backup(path) == (info, DOCUMENT)
    assert info.as_dict() == {"revision": 7, "index": 12, "keys": 3, "bytes": len(DOCUMENT), "sha256": info.sha256}


@pytest.mark.parametrize(
    "tamper,message",
    [
        (lambda h, d: h + d[:-1], "is truncated: it holds 31 bytes of the 32 its header announces"),
        (lambda h, d: h + d + b"x", "holds 1 bytes more than its header announces"),
        (lambda h, d: h + d.replace(b"kv", b"KV"), "is damaged: its SHA-256 is"),
        (lambda h, d: d, "is not a usable backup: it does not start with an abcd backup header"),
        (lambda h, d: b"", "is not a usable backup: it does not start with an abcd backup header (a JSON line)"),
        (lambda h, d: h.replace(b'"version":1', b'"version":9') + d, "backup format version 9 is not supported"),
        (lambda h, d: h.replace(b'"keys":3', b'"keys":-3') + d, "its header's keys is not a non-negative integer"),
    ],
)
def test_a_damaged_file_is_refused_naming_it_and_what_is_wrong(tmp_path, tamper, message):
    info = describe(DOCUMENT, revision=7, index=12, keys=3)
    path = write(tmp_path / "b", tamper(info.header(), DOCUMENT))
    with pytest.raises(BackupError) as refused:
        read_backup(path)
    assert message in str(refused.value) and path in str(refused.value)
