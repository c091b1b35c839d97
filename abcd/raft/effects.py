"""What the core asks its shell to do: the pieces of a step's record (record.py).

Persist writes to stable storage and later answers with a Persisted event; Restore
replaces the state machine with a snapshot from the leader; Reply resolves a request
the shell made; Trace is one line of the story.  Send (one message to transmit) and
Apply (committed entries for the state machine) are how `StepRecord.effects()` lists
a record's `messages` and `committed` parts as one sequence, for transcripts and tests.

Durability before speech: messages that promise durable state (vote grants, append
and snapshot acknowledgements) are never in a record's messages before the Persisted
event covering the state they promise has come back.  The core holds them until then, so no shell
can get this wrong (thesis §3.8; etcd's "must persist before send").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .messages import Entry, HardState, Message, Snapshot


@dataclass(frozen=True, slots=True)
class Persist:
    """Make this durable, in order, then send Persisted(seq).

    `entries` replace everything in the log from entries[0].index on (a follower
    overwriting a conflicting suffix, §5.3); `hard_state` is None when it did not change.

    `snapshot` is set when a leader's snapshot replaced this follower's log
    (InstallSnapshot): first save `snapshot_data` durably as the snapshot at
    snapshot.last_included_index, then record that the log now starts after it (the
    WAL's LOG_RESET), then the hard state and entries, if any.
    """

    seq: int
    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None = None
    snapshot_data: bytes = b""


@dataclass(frozen=True, slots=True)
class Send:
    message: Message


@dataclass(frozen=True, slots=True)
class Apply:
    """Committed entries, in log order, each handed out exactly once per process life."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Restore:
    """Replace the state machine with `data`, the snapshot taken at
    snapshot.last_included_index.  Follows the Persist that saves it, in the same step;
    the next Apply continues at last_included_index + 1."""

    snapshot: Snapshot
    data: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    tag: int
    result: "Result"


@dataclass(frozen=True, slots=True)
class Trace:
    """One event of the story, named after the TLA+ spec's actions."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


Effect = Persist | Send | Apply | Restore | Reply | Trace

# --------------------------------------------------------------------------- reply results


@dataclass(frozen=True, slots=True)
class Accepted:
    """The proposal is in the leader's log at [first_index, last_index] of `term`.

    It is committed once an Apply hands out those indexes with that term; if a
    different term shows up there, the proposal was lost to a leader change.
    """

    term: int
    first_index: int
    last_index: int


@dataclass(frozen=True, slots=True)
class NotLeader:
    """Refused: this node is not the leader.  `leader_id` is who it believes is, if any."""

    leader_id: int | None
    reason: str = "not leader"


@dataclass(frozen=True, slots=True)
class ReadReady:
    """A linearizable read may be served once last_applied >= read_index."""

    read_index: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """Refused for a reason other than leadership (e.g. a config change already pending)."""

    reason: str


Result = Accepted | NotLeader | ReadReady | Rejected
