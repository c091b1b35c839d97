"""RaftState: every field the core's mixins share, declared once with its type.

RaftCore is split by concern into mixins (election.py, replication.py, reads.py,
membership.py, snapshot.py) that all read and write one server's state.  This class
declares that state, with the invariants each field keeps; RaftCore.__init__ and
ReadsMixin._init_reads give the values.  It holds annotations only: nothing here
runs, so a field is still an ordinary instance attribute.

Names follow Figure 2 of the Raft paper where it has one.
"""
from __future__ import annotations

from collections import deque
from random import Random
from typing import TYPE_CHECKING

from .config import Configuration
from .log import RaftLog
from .options import Options
from .messages import Entry, Message, Snapshot
from .progress import Progress
from .roles import Role

if TYPE_CHECKING:
    from .effects import Reply, Trace
    from .record import ConfigState, SoftState


class RaftState:
    # ------------------------------------------------------------------ identity
    id: int
    options: Options
    # The only source of randomness (election timeouts), seeded at construction.
    rng: Random
    log: RaftLog

    # ------------------------------------------------------------------ persistent (Figure 2)
    # Written to storage (a Persist's hard_state) before any message that depends on
    # them leaves: see _hard_state_dirty below.
    current_term: int
    voted_for: int | None  # whom we voted for in current_term; None if nobody yet

    # ------------------------------------------------------------------ volatile (Figure 2)
    # Invariant: log.snapshot_index <= commit_index <= log.last_index, and commit_index
    # never decreases.
    commit_index: int
    # Invariant: last_applied <= commit_index.  Entries are applied only once they are
    # also durable here (up to min(commit_index, stable_index)); an installed snapshot
    # counts as applied at once.
    last_applied: int

    # ------------------------------------------------------------------ role and leader
    role: Role
    # The leader of current_term as far as we know; None when unknown.  A leader names
    # itself.
    leader_id: int | None
    # Ticks since we last heard from a leader (or, on a leader, since the last quorum
    # check); an election starts at randomized_election_timeout.
    election_elapsed: int
    heartbeat_elapsed: int  # a leader's ticks since its last heartbeat
    tick_count: int  # a leader's logical clock, for spotting lost requests
    # In [election_ticks, 2 * election_ticks), drawn anew on every role change (§5.2).
    randomized_election_timeout: int
    # A candidate's (or pre-candidate's) votes in this election, itself included.
    votes_granted: dict[int, bool]
    # A leader's view of every other member (voters and learners); empty otherwise.
    progress: dict[int, Progress]

    # ------------------------------------------------------------------ membership (thesis ch. 4)
    # The configuration as of log.snapshot_index.
    base_config: Configuration
    # The latest configuration in the log, committed or not (thesis §4.1): the last of
    # config_entries, or base_config if there is none.
    config: Configuration
    # (index, configuration) of every configuration entry in the log, oldest first.
    config_entries: list[tuple[int, Configuration]]
    # A leader's latest configuration entry; a new change waits until it commits.
    pending_config_index: int
    # Leadership transfer (thesis §3.10): the member we are handing over to, or None.
    # While set, the leader accepts no proposals; it is dropped when election_elapsed
    # reaches an election timeout.
    lead_transferee: int | None

    # ------------------------------------------------------------------ durability (thesis §3.8)
    # The last entry known durable here.  Invariant: stable_index <= log.last_index.
    stable_index: int
    # Persist effects are numbered; a Persisted(seq) acknowledges every seq up to it.
    # Invariant: persisted_seq <= persist_seq.
    persist_seq: int
    persisted_seq: int
    # (seq, last index, its term) of each Persist not yet acknowledged, oldest first.
    unstable_persists: deque[tuple[int, int, int]]
    # Messages that promise durable state (vote grants, acknowledgements), each with
    # the Persist seq it waits for; sent once that seq is acknowledged.
    held_messages: deque[tuple[int, Message]]

    # ------------------------------------------------------------------ reads (§6.4)
    read_round: int  # the newest round; every AppendEntries carries it
    # round -> (read_index, tags, voters that acknowledged); oldest first.
    read_rounds: dict[int, tuple[int, list[int], set[int]]]
    # Reads that arrived before the leader committed an entry of its term.
    reads_waiting_commit: list[int]
    open_read_round: int  # a round started in this step, that later reads may join

    # ------------------------------------------------------------------ per-step scratch
    # Empty between steps: _flush turns them into the step's record and resets them.
    _messages: list[Message]  # to send now
    _replies: list[Reply]
    _traces: list[Trace]
    _hard_state_dirty: bool  # current_term or voted_for changed in this step
    _unstable_entries: list[Entry]  # entries appended in this step, to persist
    _gated_this_step: list[Message]  # sent once this step's Persist is durable
    # A leader's snapshot installed in this step: (metadata, data) for Persist and Restore.
    _installed_snapshot: tuple[Snapshot, bytes] | None
    # What the last record carried: the same objects go out again until they change.
    _soft: SoftState
    _config_state: ConfigState
    _config_entries_shown: list[tuple[int, Configuration]]  # the config_entries it was built from
    _config_commit_watch: int  # the next config entry whose commit changes it (0: none)
