"""Errors of the key-value state machine, shaped like the HTTP API's error bodies.

A KVError carries everything the API needs to answer: the HTTP `status`, a machine
`code` and a `message` for a person.  `body()` is exactly the JSON body the API sends:
`{"error": message, "code": code}`.

Errors raised while applying a committed command are deterministic: every node raises
the same error for the same command, and the store is left exactly as it was.
"""
from __future__ import annotations

# Key and value limits of the HTTP API (docs/api.md), in UTF-8 bytes.
MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 1024 * 1024


class KVError(Exception):
    """A request the store refuses, with the HTTP status and code the API answers."""

    __slots__ = ("status", "code", "message")

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": self.message, "code": self.code}

    def __eq__(self, other: object) -> bool:
        # Two errors are the same answer when they would produce the same response.
        if not isinstance(other, KVError):
            return NotImplemented
        return (self.status, self.code, self.message) == (other.status, other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.status, self.code, self.message))

    def __repr__(self) -> str:
        return f"KVError({self.status}, {self.code!r}, {self.message!r})"


class SnapshotError(ValueError):
    """A snapshot that cannot be restored (corrupt, truncated or of an unknown format)."""


# --------------------------------------------------------------------------- constructors
# One function per code, so that the status that goes with each code is written once.


def bad_request(message: str) -> KVError:
    return KVError(400, "bad_request", message)


def too_large(message: str) -> KVError:
    return KVError(413, "too_large", message)


def key_not_found(key: str) -> KVError:
    return KVError(404, "not_found", f"key {key!r} not found")


def compacted(revision: int, compact_revision: int) -> KVError:
    # etcd answers ErrCompacted with gRPC OutOfRange, which its HTTP gateway maps to 400.
    return KVError(
        400,
        "compacted",
        f"revision {revision} has been compacted; the oldest revision still available "
        f"is {compact_revision}",
    )


def already_compacted(revision: int, compact_revision: int) -> KVError:
    """A compaction at or below the current compaction point (etcd: ErrCompacted too)."""
    return KVError(
        400,
        "compacted",
        f"the history is already compacted up to revision {compact_revision}: "
        f"compact at a later revision than {revision}",
    )


def future_revision(revision: int, current_revision: int) -> KVError:
    # etcd's ErrFutureRev, also OutOfRange -> 400.
    return KVError(
        400,
        "future_revision",
        f"revision {revision} is in the future; the current revision is {current_revision}",
    )


def lease_not_found(lease_id: int) -> KVError:
    return KVError(404, "lease_not_found", f"lease {lease_id} not found")


def duplicate_stale(request_id: str, window: int) -> KVError:
    # The request id is older than what the session table still remembers for its
    # client: it may have been applied already, and applying it again could apply it
    # twice, so it is refused.  The outcome of the original attempt stays unknown.
    return KVError(
        400,
        "duplicate_stale",
        f"request {request_id} is older than the last {window} requests applied for its "
        f"client; it was not applied now, and whether an earlier attempt was applied is "
        f"unknown",
    )
