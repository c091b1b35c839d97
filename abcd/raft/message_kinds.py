"""The names a person sees for Raft's messages, the same on every page and in every file.

The dashboard, a node's traffic counts (`messages` events on `/v1/events`) and a
simulator's recorded run all name a message with `describe`: the class names of
messages.py, except that a pre-vote is `PreVote`/`PreVoteResponse` and an
AppendEntries without entries is a `Heartbeat`, since that is how the paper and a
person watching tell them apart.
"""
from __future__ import annotations

from .messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNow,
)

MESSAGE_KINDS = (
    "AppendEntries",
    "Heartbeat",
    "AppendEntriesResponse",
    "RequestVote",
    "RequestVoteResponse",
    "PreVote",
    "PreVoteResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "TimeoutNow",
)

# (kind, entries carried, success: True/False for answers, None for requests)
Described = tuple[str, int, bool | None]


def describe(message) -> Described:
    kind = type(message)
    if kind is AppendEntriesRequest:
        count = len(message.entries)
        return ("AppendEntries" if count else "Heartbeat"), count, None
    if kind is AppendEntriesResponse:
        return "AppendEntriesResponse", 0, message.success
    if kind is RequestVoteRequest:
        return ("PreVote" if message.pre_vote else "RequestVote"), 0, None
    if kind is RequestVoteResponse:
        return ("PreVoteResponse" if message.pre_vote else "RequestVoteResponse"), 0, message.vote_granted
    if kind is InstallSnapshotRequest:
        return "InstallSnapshot", 0, None
    if kind is InstallSnapshotResponse:
        # match_index 0 is the answer to a stale leader: it promises nothing.
        return "InstallSnapshotResponse", 0, message.match_index > 0
    if kind is TimeoutNow:
        return "TimeoutNow", 0, None
    return kind.__name__, 0, None
