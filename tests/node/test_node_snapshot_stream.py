"""A snapshot streamed in chunks: the leader's SnapshotSender against the follower's
SnapshotReceiver, with the network between them in the test's hands (each message is
held until the test delivers or loses it), and the chunks through the real codec."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from abcd.net.chunks import SnapshotChunk, SnapshotChunkAck
from abcd.net.codec import decode_frame, encode_frame
from abcd.node.snapshot_receiver import TEMP_NAME, SnapshotReceiver
from abcd.node.snapshot_sender import SnapshotSender
from abcd.raft.messages import InstallSnapshotRequest

LEADER, FOLLOWER = 1, 2
# Text with characters of 1 to 4 bytes, so that chunk ends fall inside them.
DATA = ("snapshot é ü € 𝄞 " * 400).encode("utf-8")


class Link:
    """Messages from one side, held until the test delivers them (through the codec)."""

    def __init__(self) -> None:
        self.queue: list = []

    def deliver(self, dest, messages) -> None:
        self.queue.extend(decode_frame(encode_frame(messages)))

    def take(self):
        return self.queue.pop(0)


class Setup:
    def __init__(self, tmp_path, chunk_bytes: int = 1000) -> None:
        self.now = 0.0
        self.term = 3
        self.leading = True
        self.to_follower, self.to_leader = Link(), Link()
        self.fills = 0
        self.installed: list[tuple[int, InstallSnapshotRequest]] = []
        self.sender = SnapshotSender(
            self.to_follower.deliver, leading=lambda term: self.leading and term == self.term,
            clock=lambda: self.now, chunk_bytes=chunk_bytes, ack_timeout=5.0, done_grace=30.0,
        )
        self.receiver = SnapshotReceiver(
            FOLLOWER, os.fspath(tmp_path), self.to_leader.deliver,
            lambda peer, request: self.installed.append((peer, request)), current_term=lambda: self.term,
        )

    def request(self, term: int | None = None) -> InstallSnapshotRequest:
        return InstallSnapshotRequest(term or self.term, LEADER, FOLLOWER, 10, 2, frozenset({1, 2}), frozenset())

    def fill(self, data: bytes = DATA):
        def fill(message: InstallSnapshotRequest) -> InstallSnapshotRequest:
            self.fills += 1
            return InstallSnapshotRequest(
                message.term, message.source, message.dest, 40, 2, frozenset({1, 3}), frozenset({2}), data
            )

        return fill

    def offer(self, data: bytes = DATA) -> None:
        self.sender.offer(self.request(), self.fill(data), 40)

    def step(self) -> bool:
        """Deliver one chunk and its acknowledgement; False when nothing was in flight."""
        if not self.to_follower.queue:
            return False
        self.receiver.on_chunk(LEADER, self.to_follower.take())
        while self.to_leader.queue:
            self.sender.on_ack(FOLLOWER, self.to_leader.take())
        return True

    def run(self) -> int:
        steps = 0
        while self.step():
            steps += 1
        return steps


def temp_file(tmp_path) -> bool:
    return os.path.exists(os.path.join(tmp_path, TEMP_NAME))


def test_the_snapshot_arrives_whole_one_chunk_in_flight_at_a_time(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    assert len(s.to_follower.queue) == 1  # one chunk in flight, not the whole snapshot
    chunk = s.to_follower.queue[0]
    assert type(chunk) is SnapshotChunk and chunk.offset == 0 and len(chunk.data) <= 1000
    steps = s.run()
    assert steps >= len(DATA) // 1000
    assert s.installed == [
        (LEADER, InstallSnapshotRequest(3, LEADER, FOLLOWER, 40, 2, frozenset({1, 3}), frozenset({2}), DATA))
    ]
    assert not temp_file(tmp_path)
    assert s.sender.transfers_done == 1 and s.sender.active  # until the follower answers
    s.sender.on_response(FOLLOWER)
    assert not s.sender.active


def test_chunk_ends_do_not_split_a_utf8_character_so_chunks_travel_as_text(tmp_path):
    s = Setup(tmp_path, chunk_bytes=997)
    s.offer()
    while s.to_follower.queue:
        chunk = s.to_follower.queue[0]
        chunk.data.decode("utf-8")  # raises if a character was split
        assert b"b64" not in encode_frame([chunk])
        s.step()
    assert s.installed[0][1].data == DATA


def test_binary_data_is_cut_anywhere_and_arrives_whole(tmp_path):
    data = bytes(range(256)) * 40
    s = Setup(tmp_path)
    s.offer(data)
    s.run()
    assert s.installed[0][1].data == data


def test_the_cores_repeated_requests_during_a_transfer_are_carried_by_it(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.step()
    s.offer()  # the core presumed the request lost
    assert s.fills == 1 and len(s.to_follower.queue) == 1
    s.run()
    s.offer()  # delivered, being installed: still not sent again
    assert s.fills == 1 and not s.to_follower.queue
    assert len(s.installed) == 1


def test_a_corrupt_chunk_is_refused_and_the_transfer_starts_over(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.step()
    s.step()
    chunk = s.to_follower.take()
    flipped = bytes([chunk.data[0] ^ 0x01]) + chunk.data[1:]
    s.receiver.on_chunk(LEADER, replace(chunk, data=flipped))
    ack = s.to_leader.take()
    assert ack == SnapshotChunkAck(3, FOLLOWER, LEADER, 40, chunk.offset, False)
    assert not temp_file(tmp_path) and s.receiver.refused == 1
    s.sender.on_ack(FOLLOWER, ack)
    assert not s.sender.active and s.sender.transfers_abandoned == 1
    s.offer()  # the core asks again
    assert s.to_follower.queue[0].offset == 0
    s.run()
    assert [request.data for _, request in s.installed] == [DATA]


def test_a_lost_connection_mid_transfer_drops_it_on_both_sides_and_the_next_starts_from_zero(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.step()
    s.step()
    assert temp_file(tmp_path)
    # The connection broke: the chunk in flight is lost with it, and each side hears of it.
    s.to_follower.take()
    s.receiver.peer_lost(LEADER)
    s.sender.peer_lost(FOLLOWER)
    assert not temp_file(tmp_path) and not s.sender.active
    s.offer()
    assert s.to_follower.queue[0].offset == 0
    s.run()
    assert [request.data for _, request in s.installed] == [DATA]


def test_a_gap_left_by_a_lost_chunk_is_refused(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.step()
    s.to_follower.take()  # lost; the sender waits for its acknowledgement
    s.now += 6.0
    s.sender.on_tick()
    assert not s.sender.active and s.sender.transfers_abandoned == 1
    # A chunk that skips ahead (of a transfer whose start this node lost) is refused.
    s.offer()
    s.step()
    s.step()
    late = s.to_follower.take()
    s.receiver.on_chunk(LEADER, replace(late, offset=late.offset + 1000))
    assert s.to_leader.take().ok is False
    assert not s.installed


def test_a_leader_change_mid_transfer_ends_the_old_one_and_the_new_leaders_replaces_it(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.step()
    s.leading = False  # the leader lost its term: the next acknowledgement ends its transfer
    s.step()
    assert not s.sender.active and not s.to_follower.queue
    # A new leader (term 4) streams its own snapshot from offset 0.
    s.term = 4
    s.leading = True
    s.sender.offer(s.request(term=4), s.fill(b"new leader's snapshot" * 100), 40)
    s.run()
    assert len(s.installed) == 1 and s.installed[0][1].term == 4
    # A chunk of the old term is refused.
    s.receiver.on_chunk(LEADER, SnapshotChunk(3, LEADER, FOLLOWER, 40, 2, frozenset(), frozenset(), 0, 3, True, 0, b""))
    assert s.to_leader.take().ok is False


def test_an_old_leaders_transfer_never_replaces_a_newer_leaders(tmp_path):
    s = Setup(tmp_path)
    s.term = 4  # the core still knows term 4 only; a leader of term 5 streams
    s.sender.offer(s.request(term=5), s.fill(), 40)
    s.term = 5
    s.step()
    s.term = 4
    old = SnapshotChunk(4, 3, FOLLOWER, 40, 2, frozenset(), frozenset(), 0, 3, True, 0, b"")
    s.receiver.on_chunk(3, old)
    assert s.to_leader.take().ok is False
    s.term = 5
    s.run()  # the newer transfer went on undisturbed
    assert [request.term for _, request in s.installed] == [5]


def test_a_delivered_transfer_never_answered_is_sent_again_after_the_grace(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.run()
    s.now += 31.0
    s.sender.on_tick()
    s.offer()
    assert s.fills == 2 and s.to_follower.queue[0].offset == 0


def test_a_newer_snapshot_replaces_the_transfer_under_way(tmp_path):
    s = Setup(tmp_path)
    s.offer()
    s.step()
    s.sender.offer(s.request(), s.fill(), 41)  # the node took a newer snapshot
    assert s.fills == 2 and s.sender.transfers_abandoned == 1


def test_a_chunk_size_too_small_to_keep_characters_whole_is_refused():
    with pytest.raises(ValueError, match="chunk_bytes"):
        SnapshotSender(lambda dest, messages: None, leading=lambda term: True, clock=lambda: 0.0, chunk_bytes=4)
