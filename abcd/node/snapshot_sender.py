"""The leader's side of a snapshot streamed in chunks (docs/storage.md, "Sending").

The core asks for a snapshot with one InstallSnapshotRequest, and asks again each time
it presumes the last one lost.  Here the first request for a follower starts a
transfer: the node's newest snapshot (its bytes are opaque here) is cut into
`CHUNK_BYTES` chunks, and one chunk is in flight at a time: the next leaves when the
follower acknowledges the last.  So the leader's loop spends one chunk's encoding per
acknowledgement, between its other work, and holds one chunk's copy per follower; the
pace is the follower's (its disk, its loop) and the network's.  One chunk in flight
also keeps the stream in order under faults that delay each frame differently.

Requests the core repeats while a transfer to that follower is under way (or has just
delivered its last chunk, while the follower installs it) are dropped: the transfer
carries them.  A transfer ends, and the next request starts a new one from offset 0,
when:
* the follower refuses a chunk (a gap after a lost frame, a bad checksum),
* no acknowledgement came for `ack_timeout` seconds (a lost chunk or answer),
* the follower's connection to this node closed (its acknowledgements come on it),
* this node no longer leads the term of the transfer (a new leader streams its own),
* the follower answered the InstallSnapshotRequest (it holds the snapshot), or
  `done_grace` seconds passed after the last chunk without that answer.

Nothing here changes the core's state: a transfer cut short costs time, never safety.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import loguru

from ..net.chunks import SnapshotChunk, SnapshotChunkAck
from ..raft.messages import InstallSnapshotRequest, Message

# Bytes of snapshot per chunk.  Encoding or decoding one takes well under a millisecond,
# so neither side's loop waits long on it; at one chunk per round trip on loopback that
# is still hundreds of megabytes a second.
CHUNK_BYTES = 512 * 1024
# A UTF-8 character is at most 4 bytes: a chunk's end moves back at most 3 bytes so as
# not to split one (the wire carries valid UTF-8 as text, anything else as base64).
_UTF8_TAIL = 3

Deliver = Callable[[int, list[Message]], None]
Fill = Callable[[InstallSnapshotRequest], InstallSnapshotRequest | None]
OnEvent = Callable[[str, dict], None]


@dataclass(slots=True, eq=False)
class _Transfer:
    request: InstallSnapshotRequest  # filled: the snapshot being sent, whole
    view: memoryview
    offset: int = 0  # bytes sent (and, once acknowledged, received)
    checksum: int = 0  # crc32 of the bytes sent
    done: bool = False  # the last chunk is sent
    acked: bool = True  # the follower acknowledged the last chunk sent
    last_heard: float = 0.0
    started: float = 0.0
    chunks: int = 0


class SnapshotSender:
    """Streams snapshots to followers in chunks; see the module docstring."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        leading: Callable[[int], bool],
        clock: Callable[[], float],
        chunk_bytes: int = CHUNK_BYTES,
        ack_timeout: float = 5.0,
        done_grace: float = 30.0,
        logger=loguru.logger,
        on_event: OnEvent = lambda name, fields: None,
    ) -> None:
        if chunk_bytes < 4 * _UTF8_TAIL:
            raise ValueError(f"chunk_bytes must be at least {4 * _UTF8_TAIL}, got {chunk_bytes}")
        self._deliver = deliver
        self._leading = leading  # whether this node leads the given term
        self._clock = clock
        self.chunk_bytes = chunk_bytes
        self.ack_timeout = ack_timeout
        self.done_grace = done_grace
        self._logger = logger
        self._on_event = on_event
        self._transfers: dict[int, _Transfer] = {}
        self.chunks_sent = 0
        self.transfers_done = 0
        self.transfers_abandoned = 0

    @property
    def active(self) -> bool:
        return bool(self._transfers)

    def offer(self, message: InstallSnapshotRequest, fill: Fill, newest_index: int) -> None:
        """The core asks for a snapshot for `message.dest`: start a transfer of the newest
        one (`fill` puts it in the request), unless one of it is under way."""
        dest = message.dest
        transfer = self._transfers.get(dest)
        if transfer is not None:
            sent = transfer.request
            if sent.term == message.term and sent.last_included_index >= newest_index:
                return  # under way, or delivered and being installed
            self._abandon(dest, "a newer snapshot or term")
        filled = fill(message)
        if filled is None:
            return
        now = self._clock()
        transfer = _Transfer(filled, memoryview(filled.data), last_heard=now, started=now)
        self._transfers[dest] = transfer
        self._send_next(dest, transfer)

    def on_ack(self, peer: int, ack: SnapshotChunkAck) -> None:
        transfer = self._transfers.get(peer)
        if transfer is None or ack.last_included_index != transfer.request.last_included_index or transfer.acked:
            return  # of a transfer that ended
        if not ack.ok:
            self._abandon(peer, f"node {peer} refused the chunk at offset {ack.offset}")
            return
        if ack.offset != transfer.offset:
            return  # a late answer to an earlier transfer of the same snapshot
        transfer.acked = True
        transfer.last_heard = self._clock()
        if transfer.done:
            self.transfers_done += 1
            request = transfer.request
            self._logger.bind(event="SnapshotStreamed").info(
                "streamed the snapshot at index {} to node {}: {} bytes in {} chunks, {:.3f} s",
                request.last_included_index, peer, len(transfer.view), transfer.chunks,
                transfer.last_heard - transfer.started,
            )
            return  # kept until the follower answers the InstallSnapshotRequest (on_response)
        if not self._leading(transfer.request.term):
            self._abandon(peer, "this node no longer leads its term")
            return
        self._send_next(peer, transfer)

    def on_response(self, peer: int) -> None:
        """The follower answered an InstallSnapshotRequest: a delivered transfer is over."""
        transfer = self._transfers.get(peer)
        if transfer is not None and transfer.done and transfer.acked:
            del self._transfers[peer]

    def peer_lost(self, peer: int) -> None:
        """The follower's connection to this node closed: its acknowledgements are lost."""
        transfer = self._transfers.get(peer)
        if transfer is not None and not (transfer.done and transfer.acked):
            self._abandon(peer, f"the connection from node {peer} closed")

    def on_tick(self) -> None:
        """Abandon transfers that stalled, and forget delivered ones never answered."""
        if not self._transfers:
            return
        now = self._clock()
        for peer, transfer in list(self._transfers.items()):
            if transfer.done and transfer.acked:
                if now - transfer.last_heard > self.done_grace:
                    del self._transfers[peer]  # the core's next request sends it again
            elif now - transfer.last_heard > self.ack_timeout:
                self._abandon(peer, f"no acknowledgement from node {peer} for {self.ack_timeout:g} s")

    def _send_next(self, dest: int, transfer: _Transfer) -> None:
        view, start = transfer.view, transfer.offset
        size = len(view)
        end = min(size, start + self.chunk_bytes)
        if end < size:
            # Not in the middle of a UTF-8 character (continuation bytes are 10xxxxxx).
            stop = end - _UTF8_TAIL
            while end > stop and view[end] & 0xC0 == 0x80:
                end -= 1
            if end == stop and view[end] & 0xC0 == 0x80:
                end = min(size, start + self.chunk_bytes)  # not UTF-8 text: any cut will do
        data = view[start:end].tobytes()
        checksum = zlib.crc32(data, transfer.checksum)
        request = transfer.request
        done = end == size
        chunk = SnapshotChunk(
            term=request.term, source=request.source, dest=dest,
            last_included_index=request.last_included_index, last_included_term=request.last_included_term,
            voters=request.voters, learners=request.learners,
            offset=start, size=size, done=done, checksum=checksum, data=data,
        )
        transfer.offset, transfer.checksum, transfer.done, transfer.acked = end, checksum, done, False
        transfer.chunks += 1
        self.chunks_sent += 1
        self._deliver(dest, [chunk])

    def _abandon(self, peer: int, why: str) -> None:
        transfer = self._transfers.pop(peer)
        self.transfers_abandoned += 1
        self._logger.bind(event="SnapshotStreamAbandoned").warning(
            "abandoned streaming the snapshot at index {} to node {} at offset {} of {}: {}; "
            "the next InstallSnapshot starts over",
            transfer.request.last_included_index, peer, transfer.offset, len(transfer.view), why,
        )
        self._on_event("SnapshotStreamAbandoned", {"to": peer, "index": transfer.request.last_included_index,
                                                   "offset": transfer.offset, "reason": why})
