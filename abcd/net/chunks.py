"""The two peer messages of a snapshot streamed in chunks (docs/storage.md, "Sending").

They belong to the node around the core, never to the core: the leader's node cuts the
snapshot the core asked for into `SnapshotChunk`s and the follower's node answers each
with a `SnapshotChunkAck`; once the last chunk is in and checked, the follower's core
sees one whole InstallSnapshotRequest.  Figure 13 of the Raft paper names `offset`,
`data` and `done`; the rest (`size`, the running `checksum`, the acknowledgement) is
what lets each side check the stream and the leader pace it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    term: int
    source: int
    dest: int
    last_included_index: int
    last_included_term: int
    voters: frozenset[int]
    learners: frozenset[int]
    # Where `data` starts in the snapshot's bytes, and how many bytes there are in all.
    offset: int
    size: int
    # The last chunk: the follower hands the whole snapshot to its core.
    done: bool
    # zlib.crc32 of the snapshot's bytes from 0 to the end of this chunk.
    checksum: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SnapshotChunkAck:
    term: int
    source: int
    dest: int
    last_included_index: int
    # The bytes received and checked so far (the next offset expected).
    offset: int
    # False: the follower refused the chunk (a gap, a bad checksum, a stale sender);
    # the leader abandons the transfer and starts over when its core asks again.
    ok: bool
