"""Durable file operations shared by the WAL, snapshots and meta.json.

A rename or a new file is durable only once its directory is fsynced too (POSIX says
nothing about directory entries otherwise), so every helper that creates, renames or
deletes a file ends with `fsync_dir`.  `os.fsync` / `os.fdatasync` are looked up at
call time on purpose: tests count the calls to prove durability is never skipped.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def datasync(fd: int) -> None:
    """Flush a file's data and the metadata needed to read it back (its size)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # macOS and Windows have no fdatasync
        os.fsync(fd)


def fsync_dir(path: str) -> None:
    """Make the directory entries of `path` (created, renamed, deleted files) durable."""
    fd = os.open(path, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: str) -> None:
    """Create `path` (and parents) if missing, durably: the parent learns of the new entry."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    ensure_dir(parent)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    fsync_dir(parent)


def write_all(fd: int, data) -> None:
    """os.write may write less than asked (signals, quotas); loop until all is written."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pwrite_all(fd: int, data, offset: int) -> None:
    """os.pwrite until all of `data` is written at `offset` (writes may come up short)."""
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def atomic_write(path: str, chunks: Iterable[bytes]) -> None:
    """Replace `path` with the concatenation of `chunks`, all or nothing, durably.

    Temp file in the same directory (a rename is atomic only within one file system),
    fsync it, rename over the target, fsync the directory.  A crash at any point leaves
    either the old file or the new one, plus at worst a stale `.<name>.tmp`.
    """
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | O_CLOEXEC, 0o644)
    try:
        for chunk in chunks:
            write_all(fd, chunk)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
