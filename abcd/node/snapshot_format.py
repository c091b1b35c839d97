"""What a node's snapshot is made of, in memory, on the wire and in its file.

What travels (`encode_wire`): one header line of JSON, then the KV snapshot
(kv/snapshot.py: the packed format, made for loading)::

    {"format":"abcd-node-snapshot","version":1,"members":"<context>"}\\nABCD-KV\\0...

The header carries what the follower needs besides the state machine: the member
table as of the snapshot's index, which no log entry may hold any more.  It is kept in
memory in this form (`NodeSnapshot.data`), so sending costs no copy.  A snapshot file
(storage/snapshot.py) holds the KV document alone, the member table in its meta.
"""
from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import orjson

from ..kv import KVStore
from ..kv import snapshot as kv_snapshot
from ..kv import snapshot_packed as kv_packed
from ..raft.messages import Snapshot

WIRE_FORMAT = "abcd-node-snapshot"
WIRE_VERSION = 1
# A header line longer than this is not ours (the member table of even a large
# cluster is a few kilobytes); refusing early avoids scanning megabytes for a newline.
MAX_HEADER_BYTES = 1024 * 1024
# Keys per slice in encode_state_parts: well under a millisecond of work for typical
# keys, so the thread encoding a snapshot hands the GIL back to the event loop at
# least that often.
ENCODE_SLICE = kv_packed.SLICE


class SnapshotDataError(ValueError):
    """Snapshot bytes that are not what a node sends; str() says what is wrong."""


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A snapshot this node holds, durable in `path` (None while an installed one is
    still being saved), and in memory as it travels (`data`: see encode_wire)."""

    index: int
    term: int
    voters: frozenset[int]
    learners: frozenset[int]
    members: str | None
    data: bytes
    path: str | None = None

    def raft_snapshot(self) -> Snapshot:
        return Snapshot(self.index, self.term, self.voters, self.learners)



def encode_state_parts(state: dict, *, pause: bool = True) -> list[bytes]:
    """A KV capture as kv/snapshot.encode writes it (the packed format), in pieces,
    with orjson for the JSON parts (the same bytes, faster).

    Meant for a worker thread.  After each slice of keys it yields the GIL
    (time.sleep(0), unless `pause` is false: a process of its own has no one to yield
    to): a thread that gives the GIL up only when forced to (after the 5 ms switch
    interval) makes the event loop wait up to that long each time the loop releases it
    for I/O.  Measured while a 63,000-key store was encoded: the loop's longest wait
    7-9 ms instead of 10-14 ms, and 2.5 times as many loop turns.
    """
    return kv_packed.encode_parts(state, dumps=orjson.dumps, pause=_yield_gil if pause else None)


def _yield_gil() -> None:
    time.sleep(0)


def encode_state(state: dict, *, pause: bool = True) -> bytes:
    """encode_state_parts, joined: the same bytes as kv/snapshot.encode(state)."""
    return b"".join(encode_state_parts(state, pause=pause))


def wire_header(members: str | None) -> bytes:
    return orjson.dumps({"format": WIRE_FORMAT, "version": WIRE_VERSION, "members": members}) + b"\n"


def encode_wire(members: str | None, kv: bytes | list[bytes]) -> bytes:
    """What an InstallSnapshotRequest carries: the header line, then the KV document
    (given whole, or as the parts of encode_state_parts: joined once, not twice)."""
    parts = kv if type(kv) is list else [kv]
    return b"".join([wire_header(members), *parts])


def decode_wire(data: bytes) -> tuple[str | None, memoryview]:
    """(the member table context, the KV document) of `encode_wire` bytes."""
    end = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise SnapshotDataError(
            f"snapshot data does not start with a header line (JSON, at most {MAX_HEADER_BYTES} bytes, then a newline)"
        )
    view = memoryview(data)
    try:
        header = orjson.loads(view[:end])
    except orjson.JSONDecodeError as error:
        raise SnapshotDataError(f"snapshot data header is not valid JSON: {error}") from None
    if type(header) is not dict or header.get("format") != WIRE_FORMAT:
        raise SnapshotDataError(f"snapshot data header is not an {WIRE_FORMAT} header: {bytes(view[:80])!r}")
    if header.get("version") != WIRE_VERSION:
        raise SnapshotDataError(
            f"snapshot data format version {header.get('version')!r} is not supported (expected {WIRE_VERSION})"
        )
    members = header.get("members")
    if members is not None and type(members) is not str:
        raise SnapshotDataError(f"snapshot data header: members must be a string or null, got {type(members).__name__}")
    return members, view[end + 1 :]


def load_store(template: KVStore, kv: bytes | memoryview) -> KVStore:
    """A new store (with `template`'s bounds) holding the KV snapshot `kv` (any
    readable version: kv/snapshot.py).

    Its JSON parts are parsed by orjson, which reads a memoryview without copying and
    is faster than the standard library's parser the kv package uses.
    """
    with _collector_paused():
        return KVStore.from_capture(kv_snapshot.decode(kv, loads=orjson.loads), **template.bounds())


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while millions of containers are built that all stay
    alive, and those frozen afterwards (gc.freeze), as the node freezes the survivors
    of every full collection (__main__.py): collections would otherwise walk them
    again and again for nothing.  Measured loading a million keys (CPU time, with the
    100,000 allocations that follow): 2.66 s with the collector running, 2.25 s
    paused then resumed, 1.69 s paused and frozen.  Young objects of other code frozen
    with them cost at most one young generation's worth of memory."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
