"""The follower's side of a snapshot streamed in chunks (docs/storage.md, "Sending").

Chunks arrive in order, one at a time (snapshot_sender.py).  Each is checked against
the running checksum it carries, then written to a temp file in the data dir (not
kept in memory: one transfer holds at most a chunk here), and acknowledged.  After the
last one, the whole file is checked (its size, its checksum), read back, and handed on
as one InstallSnapshotRequest, as if it had come in one frame: the node screens it and
its core installs it, or answers it holds that state already.

One transfer at a time.  A chunk at offset 0 starts a new one, from whichever leader
(a new leader's replaces an old one's, never the other way round; the core later
judges the term of the request handed on, as for any message).  A chunk that does not continue the transfer under way
(a gap after a lost frame, another snapshot), or whose checksum is wrong, or from a
term older than this node's, is refused: the transfer is dropped with its file, and
the leader starts over.  So does the loss of the connection the chunks came on.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable

import loguru

from ..net.chunks import SnapshotChunk, SnapshotChunkAck
from ..raft.messages import InstallSnapshotRequest, Message

TEMP_NAME = "snapshot.incoming"

Deliver = Callable[[int, list[Message]], None]
HandOver = Callable[[int, InstallSnapshotRequest], None]


@dataclass(slots=True, eq=False)
class _Receiving:
    source: int
    term: int
    index: int
    size: int
    file: BinaryIO
    received: int = 0
    checksum: int = 0


class SnapshotReceiver:
    """Reassembles streamed snapshots; see the module docstring."""

    def __init__(
        self,
        node_id: int,
        data_dir: str,
        deliver: Deliver,
        hand_over: HandOver,
        *,
        current_term: Callable[[], int],
        logger=loguru.logger,
    ) -> None:
        self.node_id = node_id
        self.path = os.path.join(data_dir, TEMP_NAME)
        self._deliver = deliver
        self._hand_over = hand_over
        self._current_term = current_term
        self._logger = logger
        self._receiving: _Receiving | None = None
        self.chunks_received = 0
        self.refused = 0
        self._remove_file()  # what a crash mid-transfer left behind

    def on_chunk(self, peer: int, chunk: SnapshotChunk) -> None:
        term = self._current_term()
        if chunk.term < term:
            self._refuse(peer, chunk, f"its term {chunk.term} is older than this node's ({term})")
            return
        receiving = self._receiving
        if receiving is not None and chunk.term < receiving.term:
            # An old leader that has not heard of the new one yet: the newer transfer goes on.
            self._refuse(peer, chunk, f"a transfer of term {receiving.term} is under way")
            return
        if chunk.offset == 0:
            self._drop()
            receiving = self._receiving = _Receiving(
                peer, chunk.term, chunk.last_included_index, chunk.size, open(self.path, "wb")
            )
        elif receiving is None or (receiving.source, receiving.term, receiving.index) != (
            peer, chunk.term, chunk.last_included_index
        ):
            self._refuse(peer, chunk, "no transfer of that snapshot is under way (its start was lost)")
            return
        elif chunk.offset != receiving.received:
            self._refuse(peer, chunk, f"a gap: {receiving.received} bytes were received so far")
            return
        data = chunk.data
        checksum = zlib.crc32(data, receiving.checksum)
        end = receiving.received + len(data)
        if checksum != chunk.checksum:
            self._refuse(peer, chunk, "its checksum does not match its bytes (corrupt)")
            return
        if chunk.size != receiving.size or end > receiving.size or chunk.done != (end == receiving.size):
            self._refuse(peer, chunk, f"its size or end does not add up ({end} of {receiving.size} bytes)")
            return
        receiving.file.write(data)
        receiving.received, receiving.checksum = end, checksum
        self.chunks_received += 1
        if chunk.done:
            data = self._finish(receiving)
        self._ack(peer, chunk, receiving.received, True)
        if chunk.done:
            request = InstallSnapshotRequest(
                term=chunk.term, source=peer, dest=self.node_id,
                last_included_index=chunk.last_included_index, last_included_term=chunk.last_included_term,
                voters=chunk.voters, learners=chunk.learners, data=data,
            )
            self._hand_over(peer, request)

    def _finish(self, receiving: _Receiving) -> bytes:
        """The whole snapshot, read back from the temp file (then removed)."""
        self._receiving = None
        receiving.file.close()
        with open(self.path, "rb") as f:
            data = f.read()
        self._remove_file()
        return data

    def peer_lost(self, peer: int) -> None:
        """The connection chunks came on from `peer` closed: its transfer is over."""
        if self._receiving is not None and self._receiving.source == peer:
            self._logger.info(
                "dropping the snapshot being received from node {} ({} of {} bytes): its connection closed",
                peer, self._receiving.received, self._receiving.size,
            )
            self._drop()

    def close(self) -> None:
        self._drop()

    def _refuse(self, peer: int, chunk: SnapshotChunk, why: str) -> None:
        self.refused += 1
        self._logger.warning(
            "refusing a snapshot chunk from node {} (index {}, offset {}, {} bytes): {}; the leader starts over",
            peer, chunk.last_included_index, chunk.offset, len(chunk.data), why,
        )
        if self._receiving is not None and self._receiving.source == peer:
            self._drop()
        self._ack(peer, chunk, chunk.offset, False)

    def _ack(self, peer: int, chunk: SnapshotChunk, offset: int, ok: bool) -> None:
        ack = SnapshotChunkAck(
            term=self._current_term(), source=self.node_id, dest=peer,
            last_included_index=chunk.last_included_index, offset=offset, ok=ok,
        )
        self._deliver(peer, [ack])

    def _drop(self) -> None:
        if self._receiving is not None:
            self._receiving.file.close()
            self._receiving = None
            self._remove_file()

    def _remove_file(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
