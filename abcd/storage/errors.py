"""The exceptions of abcd.storage.

Every storage error says which file is wrong and why, so that an operator can act on
the message alone.  None of them is ever swallowed inside this package: a node that
cannot trust its disk must stop rather than guess.
"""
from __future__ import annotations


class StorageError(Exception):
    """The data directory cannot be read or written as abcd expects."""


class CorruptWALError(StorageError):
    """A WAL segment holds damaged data that is not a torn final write.

    Starting anyway could silently drop committed entries, so recovery refuses.
    `path` names the segment file and `offset` the byte offset of the damaged record
    (None when the damage is not about one record, e.g. a missing segment).
    """

    def __init__(self, message: str, *, path: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset

    @classmethod
    def at_record(cls, path: str, offset: int, reason: str) -> "CorruptWALError":
        return cls(
            f"{path}: record at offset {offset} {reason}; refusing to start (committed data could be lost)",
            path=path,
            offset=offset,
        )
