"""Message counts for the event stream: kinds, entries, answers, per peer."""
from __future__ import annotations

import pytest

from abcd.node.traffic import Traffic
from abcd.raft.message_kinds import describe
from abcd.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNow,
)


def append(entries: int, dest: int = 2) -> AppendEntriesRequest:
    return AppendEntriesRequest(3, 1, dest, 0, 0, tuple(Entry(3, i + 1) for i in range(entries)), 0)


@pytest.mark.parametrize(
    "message, expected",
    [
        (append(0), ("Heartbeat", 0, None)),
        (append(5), ("AppendEntries", 5, None)),
        (AppendEntriesResponse(3, 2, 1, True, 5), ("AppendEntriesResponse", 0, True)),
        (AppendEntriesResponse(3, 2, 1, False, 0), ("AppendEntriesResponse", 0, False)),
        (RequestVoteRequest(4, 1, 2, 9, 3), ("RequestVote", 0, None)),
        (RequestVoteRequest(4, 1, 2, 9, 3, pre_vote=True), ("PreVote", 0, None)),
        (RequestVoteResponse(4, 2, 1, True), ("RequestVoteResponse", 0, True)),
        (RequestVoteResponse(4, 2, 1, False, True), ("PreVoteResponse", 0, False)),
        (InstallSnapshotRequest(3, 1, 2, 100, 3, frozenset({1, 2})), ("InstallSnapshot", 0, None)),
        (InstallSnapshotResponse(3, 2, 1, 100), ("InstallSnapshotResponse", 0, True)),
        (InstallSnapshotResponse(5, 2, 1, 0), ("InstallSnapshotResponse", 0, False)),
        (TimeoutNow(3, 1, 2), ("TimeoutNow", 0, None)),
    ],
)
def test_each_message_is_named_as_the_dashboard_draws_it(message, expected):
    assert describe(message) == expected


def test_counts_add_up_per_peer_kind_and_answer_and_take_starts_over():
    traffic = Traffic()
    traffic.count_sent(2, [append(3, 2), append(0, 2), append(4, 2)])
    traffic.count_sent(3, [append(7, 3)])
    traffic.count_received(2, [AppendEntriesResponse(3, 2, 1, True, 3), AppendEntriesResponse(3, 2, 1, True, 7)])
    traffic.count_received(2, [AppendEntriesResponse(3, 2, 1, False, 0)])
    sent, received = traffic.take()
    assert sent == [
        {"to": 2, "type": "AppendEntries", "count": 2, "entries": 7, "success": None},
        {"to": 2, "type": "Heartbeat", "count": 1, "entries": 0, "success": None},
        {"to": 3, "type": "AppendEntries", "count": 1, "entries": 7, "success": None},
    ]
    assert received == [
        {"from": 2, "type": "AppendEntriesResponse", "count": 2, "entries": 0, "success": True},
        {"from": 2, "type": "AppendEntriesResponse", "count": 1, "entries": 0, "success": False},
    ]
    assert traffic.take() == ([], [])
    traffic.count_sent(2, [append(0)])
    traffic.clear()
    assert traffic.take() == ([], [])
