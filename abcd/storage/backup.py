"""Backup files: a snapshot of the key-value store taken from a live member, for
`abcdctl snapshot save` and `python -m abcd restore` (docs/operations.md).

A backup file is one header line, then the store's snapshot document:

    {"format": "abcd-backup", "version": 1, "revision", "index", "keys",
     "bytes", "sha256"}\n
    <bytes bytes: the key-value snapshot document of docs/kv.md>

`revision` and `index` are the store's revision and applied log index at the capture,
`keys` its live keys, `bytes` and `sha256` the document's length and SHA-256 (hex).
The header is written first so that the file can be streamed as it is made; reading
it back checks both, so a truncated or damaged file is refused with what is wrong
before anything is restored from it.  The document itself stays opaque here.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

FORMAT = "abcd-backup"
VERSION = 1
# A header longer than this is not ours: refusing early avoids reading a big file whole.
MAX_HEADER_BYTES = 64 * 1024


class BackupError(ValueError):
    """A file that is not an intact backup; str() says what is wrong."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    revision: int
    index: int
    keys: int
    bytes: int
    sha256: str

    def header(self) -> bytes:
        return json.dumps({"format": FORMAT, "version": VERSION, **asdict(self)}, separators=(",", ":")).encode() + b"\n"

    def as_dict(self) -> dict:
        return asdict(self)


def describe(document: bytes | memoryview, *, revision: int, index: int, keys: int) -> BackupInfo:
    """The header of a backup holding `document` (the store's state at revision/index)."""
    return BackupInfo(revision, index, keys, len(document), hashlib.sha256(document).hexdigest())


def parse_header(line: bytes) -> BackupInfo:
    """The BackupInfo of a header line (without its newline); BackupError if it is not one."""
    try:
        header = json.loads(line)
    except ValueError:
        raise BackupError("it does not start with an abcd backup header (a JSON line)") from None
    if type(header) is not dict or header.get("format") != FORMAT:
        raise BackupError("it does not start with an abcd backup header")
    if header.get("version") != VERSION:
        raise BackupError(f"backup format version {header.get('version')!r} is not supported (this abcd reads {VERSION})")
    try:
        info = BackupInfo(*(header[name] for name in ("revision", "index", "keys", "bytes", "sha256")))
    except KeyError as e:
        raise BackupError(f"its header has no {e.args[0]!r}") from None
    for name in ("revision", "index", "keys", "bytes"):
        value = getattr(info, name)
        if type(value) is not int or value < 0:
            raise BackupError(f"its header's {name} is not a non-negative integer: {value!r}")
    if type(info.sha256) is not str or len(info.sha256) != 64:
        raise BackupError(f"its header's sha256 is not a SHA-256 in hex: {info.sha256!r}")
    return info


def read_backup(path: str | os.PathLike) -> tuple[BackupInfo, bytes]:
    """(the header, the snapshot document) of a backup file, checked whole.

    Raises BackupError naming the file and what is wrong (not a backup, truncated,
    longer than announced, checksum mismatch), OSError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            line = f.readline(MAX_HEADER_BYTES)
            if not line.endswith(b"\n"):
                raise BackupError("it does not start with an abcd backup header (a JSON line)")
            info = parse_header(line[:-1])
            document = f.read()
    except BackupError as e:
        raise BackupError(f"{os.fspath(path)} is not a usable backup: {e}") from None
    check(path, info, document)
    return info, document


def check(path: str | os.PathLike, info: BackupInfo, document: bytes) -> None:
    """BackupError unless `document` is what `info` announces."""
    where = os.fspath(path)
    if len(document) < info.bytes:
        raise BackupError(
            f"{where} is truncated: it holds {len(document)} bytes of the {info.bytes} its header announces"
        )
    if len(document) > info.bytes:
        raise BackupError(f"{where} holds {len(document) - info.bytes} bytes more than its header announces")
    digest = hashlib.sha256(document).hexdigest()
    if digest != info.sha256:
        raise BackupError(f"{where} is damaged: its SHA-256 is {digest}, its header says {info.sha256}")
