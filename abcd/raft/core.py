"""RaftCore: one Raft server as a deterministic reducer.

Theory of operation
-------------------
`step(event)` takes one event (a peer message, a Tick, a proposal, a read request,
a storage acknowledgement, a snapshot the shell took) and returns one StepRecord:
what the shell must carry out, in named parts, and the order in which it must
(record.py; the effects themselves are in effects.py).  Nothing here reads a clock, touches a socket or a disk,
or draws randomness except from the RNG seeded at construction: the same events
in the same order always give the same records.  A plain loop in the simulator
and `scan` in the node's Rx pipeline drive the same object.

Rule 1 (after h11): every change of Raft state happens in the raft package, through
`step`, log compaction included (the SnapshotTaken event).  The shell only executes
records, and learns the leader, role, term, commit index and configuration from
their `soft` and `config` parts rather than by reading the core's fields.

Time is logical.  The shell sends Tick every heartbeat interval; an election
timeout is `election_ticks` ticks, randomized per term in [T, 2T) (§5.2).

Events are handled in `_handle`; at the end of a step `_flush` turns what changed
into the record: one Persist for the new hard state and entries, the messages that
waited for an earlier Persist, the newly committed entries, and new soft and
configuration states when they changed.
`step_many` handles a whole batch with one flush, so a batch of events costs one
write and one fsync.

The work is split by concern into mixins over the same state: election.py (votes,
pre-vote, leadership transfer), replication.py (AppendEntries both ways, commit),
reads.py (ReadIndex), membership.py (configuration changes), snapshot.py
(InstallSnapshot and log compaction).  The state they share is declared, with its
invariants, in state.py (RaftState); __init__ below gives it its first values.
"""
from __future__ import annotations

import random
from collections import deque
from operator import attrgetter

from .config import Configuration, config_context
from .effects import NotLeader, Persist, Reply, Restore, Trace
from .election import ElectionMixin
from .log import RaftLog
from .membership import MembershipMixin
from .messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    Message,
    PeerUnreachable,
    Persisted,
    Propose,
    ProposeConfig,
    ReadIndex,
    Receive,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    SnapshotTaken,
    Tick,
    TimeoutNow,
    TransferLeadership,
    append_entries_rejected,
)
from .options import Options
from .reads import ReadsMixin
from .record import EMPTY, ConfigEntry, ConfigState, SoftState, StepRecord
from .replication import ReplicationMixin
from .progress import PROBE
from .roles import FOLLOWER, LEADER
from .snapshot import SnapshotMixin



class RaftCore(ElectionMixin, ReplicationMixin, ReadsMixin, MembershipMixin, SnapshotMixin):
    def __init__(
        self,
        node_id: int,
        *,
        voters=(),
        learners=(),
        hard_state: HardState = HardState(),
        entries=(),
        snapshot: Snapshot | None = None,
        applied: int | None = None,
        seed: int = 0,
        options: Options = Options(),
    ) -> None:
        self.id = node_id
        self.options = options
        self.rng = random.Random(seed)
        snapshot = snapshot or Snapshot(voters=frozenset(voters), learners=frozenset(learners))
        self.log = RaftLog(snapshot.last_included_index, snapshot.last_included_term, entries)
        # Persistent state (Figure 2), restored from storage.
        self.current_term = hard_state.current_term
        self.voted_for = hard_state.voted_for
        # Volatile state.  Invariant: last_applied <= commit_index <= last log index.
        self.commit_index = snapshot.last_included_index
        self.last_applied = applied if applied is not None else snapshot.last_included_index
        self.role = FOLLOWER
        self.leader_id = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.tick_count = 0  # a leader's logical clock, for spotting lost requests
        self.randomized_election_timeout = options.election_ticks
        self.votes_granted = {}
        self.progress = {}
        # Membership: the base configuration (from the snapshot) and config entries in the log.
        self.base_config = Configuration(snapshot.voters, snapshot.learners)
        self.config = self.base_config
        self.config_entries = []
        self.pending_config_index = 0
        self.lead_transferee = None
        # Durability bookkeeping.  stable_index: the last entry known durable here.
        # Invariant: stable_index <= log.last_index.
        self.stable_index = self.log.last_index
        self.persist_seq = 0
        self.persisted_seq = 0
        self.unstable_persists = deque()
        self.held_messages = deque()
        # Per-step scratch, turned into the step's record by _flush.
        self._messages = []
        self._replies = []
        self._traces = []
        self._hard_state_dirty = False
        self._unstable_entries = []
        self._gated_this_step = []
        # A leader's snapshot installed in this step: (metadata, data) for Persist and Restore.
        self._installed_snapshot = None
        self._init_reads()
        self.rebuild_config()
        self.reset_election_timeout()
        if options.advance_first_election:
            self.election_elapsed = options.election_ticks - 1
        # What the last record said; a new object only when something in it changed.
        self._soft = self._soft_state()
        self._config_state = self._make_config_state()

    # ------------------------------------------------------------------ public API

    def step(self, event) -> StepRecord:
        self._handle(event)
        return self._flush()

    def step_many(self, events) -> StepRecord:
        """Handle a batch of events with a single flush (one Persist, one Apply)."""
        for event in events:
            self._handle(event)
        return self._flush()

    @property
    def soft_state(self) -> SoftState:
        """The soft state as of the last record (its `soft` part)."""
        return self._soft

    @property
    def config_state(self) -> ConfigState:
        """The configuration state as of the last record (its `config` part)."""
        return self._config_state

    @property
    def hard_state(self) -> HardState:
        return HardState(current_term=self.current_term, voted_for=self.voted_for)

    def is_leader(self) -> bool:
        return self.role == LEADER

    def match_index(self, peer: int) -> int | None:
        """A leader's match index of `peer` (None unless leading and `peer` is a member).
        A read-only query for the shell's rare decisions (promoting a learner)."""
        pr = self.progress.get(peer)
        return pr.match_index if pr is not None else None

    def election_timer(self) -> tuple[int, int]:
        """(ticks since the election timer was last reset, the randomized timeout it
        counts towards): read-only, for the shell's account of a Timeout."""
        return self.election_elapsed, self.randomized_election_timeout

    def match_indexes(self) -> dict[int, int]:
        """{peer: match index} while leading, else empty (read-only)."""
        return {peer: pr.match_index for peer, pr in self.progress.items()}

    def status(self) -> dict:
        return {
            "id": self.id,
            "role": self.role,
            "term": self.current_term,
            "leader": self.leader_id,
            "commit_index": self.commit_index,
            "applied_index": self.last_applied,
            "last_log_index": self.log.last_index,
            "snapshot_index": self.log.snapshot_index,
            "voters": sorted(self.config.voters),
            "learners": sorted(self.config.learners),
        }

    # ------------------------------------------------------------------ dispatch

    def _handle(self, event) -> None:
        kind = type(event)
        if kind is Receive:
            self._receive(event.message)
        elif kind is Tick:
            self.tick()
        elif kind is Propose:
            self.handle_propose(event)
        elif kind is ReadIndex:
            self.handle_read_index(event)
        elif kind is Persisted:
            self.handle_persisted(event.seq)
        elif kind is ProposeConfig:
            self.handle_propose_config(event)
        elif kind is TransferLeadership:
            self.handle_transfer_leadership(event)
        elif kind is PeerUnreachable:
            self.handle_peer_unreachable(event.peer)
        elif kind is SnapshotTaken:
            self.handle_snapshot_taken(event)
        elif kind in _MESSAGE_TYPES:
            self._receive(event)
        else:
            raise TypeError(f"RaftCore cannot handle {kind.__name__}")

    def _receive(self, m: Message) -> None:
        if self.options.trace_messages:
            self.trace("Receive", message=m)
        if m.dest != self.id:
            return
        if m.term > self.current_term:
            if type(m) is RequestVoteRequest:
                # §6 / thesis §4.2.3: while we hear from a live leader, ignore
                # candidates, so that a removed or partitioned server cannot depose
                # it.  A transfer (TimeoutNow) is the leader's own wish.
                in_lease = (
                    self.options.check_quorum
                    and self.leader_id is not None
                    and self.election_elapsed < self.options.election_ticks
                    and not m.transfer
                )
                if in_lease:
                    self.trace("IgnoreVote", candidate=m.source, their_term=m.term, reason="leader lease")
                    return
                if not m.pre_vote:
                    self.become_follower(m.term, None)
            elif type(m) is RequestVoteResponse and m.pre_vote and m.vote_granted:
                pass  # the grant was for the term we would run in; our term is unchanged
            elif type(m) in (AppendEntriesRequest, InstallSnapshotRequest, TimeoutNow):
                self.become_follower(m.term, m.source)
            else:
                self.become_follower(m.term, None)
        elif m.term < self.current_term:
            self._receive_stale(m)
            return

        kind = type(m)
        if kind is AppendEntriesRequest:
            self.handle_append_entries_request(m)
        elif kind is AppendEntriesResponse:
            if self.role == LEADER:
                self.handle_append_entries_response(m)
        elif kind is RequestVoteRequest:
            self.handle_request_vote_request(m)
        elif kind is RequestVoteResponse:
            self.handle_request_vote_response(m)
        elif kind is InstallSnapshotRequest:
            self.handle_install_snapshot_request(m)
        elif kind is InstallSnapshotResponse:
            if self.role == LEADER:
                self.handle_install_snapshot_response(m)
        elif kind is TimeoutNow:
            self.handle_timeout_now(m)

    def _receive_stale(self, m: Message) -> None:
        """A message from an older term (§5.1: reject it, telling the sender our term)."""
        kind = type(m)
        if kind is AppendEntriesRequest:
            # A deposed leader: answer so that it learns the new term and steps down.
            self.send(
                append_entries_rejected(
                    term=self.current_term,
                    source=self.id,
                    dest=m.source,
                    rejected_index=m.prev_log_index,
                    read_round=m.read_round,
                )
            )
        elif kind is InstallSnapshotRequest:
            # Figure 13 step 1: reply at once; match_index 0 promises nothing.
            self.send(InstallSnapshotResponse(term=self.current_term, source=self.id, dest=m.source, match_index=0))
        elif kind is RequestVoteRequest and m.pre_vote:
            self.send(
                RequestVoteResponse(
                    term=self.current_term, source=self.id, dest=m.source, vote_granted=False, pre_vote=True
                )
            )

    # ------------------------------------------------------------------ time

    def tick(self) -> None:
        if self.role == LEADER:
            self.tick_leader()
        else:
            self.election_elapsed += 1
            if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
                self.election_elapsed = 0
                self.trace("Timeout")
                self.campaign(pre_vote=self.options.pre_vote)

    def tick_leader(self) -> None:
        self.tick_count += 1
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.options.election_ticks:
            self.election_elapsed = 0
            if self.options.check_quorum and not self.check_quorum_active():
                self.trace("CheckQuorumFailed")
                self.become_follower(self.current_term, None)
                return
            if self.lead_transferee is not None:
                self.trace("TransferAborted", to=self.lead_transferee)
                self.lead_transferee = None
        if self.role == LEADER and self.heartbeat_elapsed >= self.options.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self.broadcast_heartbeat()

    def handle_peer_unreachable(self, peer: int) -> None:
        if self.role == LEADER:
            pr = self.progress.get(peer)
            if pr is not None and pr.state != PROBE:
                # What was in flight (entries or a snapshot) is lost: start again from
                # what matches, which sends a new snapshot if that is still needed.
                pr.become_probe()
            return
        if peer != self.leader_id or not self.promotable():
            return
        # Our leader's connection broke, most likely because its process died.  Forget
        # its lease and campaign after a short randomized wait instead of a whole
        # election timeout.  This cannot hurt a live leader: followers that still hear
        # it refuse our pre-vote, and its next heartbeat resets our timer anyway.
        self.trace("LeaderUnreachable", leader=peer)
        self.leader_id = None
        soon = 1 + self.rng.randrange(max(1, self.options.election_ticks // 2))
        self.election_elapsed = max(self.election_elapsed, self.randomized_election_timeout - soon)

    def check_quorum_active(self) -> bool:
        active = {self.id}
        for peer, pr in self.progress.items():
            if pr.recent_active:
                active.add(peer)
            pr.recent_active = False
        return self.config.has_quorum(active)

    def reset_election_timeout(self) -> None:
        t = self.options.election_ticks
        self.randomized_election_timeout = t + self.rng.randrange(t)

    def on_commit_advanced(self) -> None:
        if self.role == LEADER:
            self.release_reads_waiting_commit()
            self.step_down_if_removed()

    def promotable(self) -> bool:
        return self.id in self.config.voters

    # ------------------------------------------------------------------ roles

    def become_follower(self, term: int, leader_id: int | None) -> None:
        was = self.role
        if term != self.current_term:
            self.current_term = term
            self.voted_for = None
            self._hard_state_dirty = True
        self.role = FOLLOWER
        self.leader_id = leader_id
        self._reset_role_state()
        if was != FOLLOWER:
            self.fail_pending_reads()
        self.trace("BecomeFollower", leader=leader_id)

    def _reset_role_state(self) -> None:
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.votes_granted = {}
        self.progress = {}
        self.lead_transferee = None
        self.reset_election_timeout()

    # ------------------------------------------------------------------ effects

    def trace(self, name: str, **fields) -> None:
        fields["term"] = self.current_term
        fields["role"] = self.role
        self._traces.append(Trace(name, fields))

    def send(self, m: Message) -> None:
        if self.options.trace_messages:
            self.trace("Send", message=m)
        self._messages.append(m)

    def send_after_persist(self, m: Message) -> None:
        """Send once everything persisted so far (and in this step) is durable (§3.8)."""
        self._gated_this_step.append(m)

    def reply(self, tag: int, result) -> None:
        self._replies.append(Reply(tag, result))

    def not_leader(self, tag: int) -> None:
        self.reply(tag, NotLeader(self.leader_id if self.leader_id != self.id else None))

    def append_local(self, entries: list[Entry], *, may_hold_config: bool = True) -> None:
        """Append to our log and schedule it for persistence."""
        truncated = self.log.append(entries)
        if truncated is not None:
            self.stable_index = min(self.stable_index, truncated - 1)
        pending = self._unstable_entries
        start = entries[0].index
        if not pending or start <= pending[0].index:
            self._unstable_entries = list(entries)
        else:
            del pending[start - pending[0].index :]
            pending.extend(entries)
        if truncated is not None or (may_hold_config and any(map(_kind, entries))):
            self.rebuild_config()

    def handle_persisted(self, seq: int) -> None:
        if seq <= self.persisted_seq:
            return
        self.persisted_seq = seq
        unstable = self.unstable_persists
        while unstable and unstable[0][0] <= seq:
            _, last_index, last_term = unstable.popleft()
            if last_index and self.log.term_at(last_index) == last_term:
                self.stable_index = max(self.stable_index, last_index)
        held = self.held_messages
        while held and held[0][0] <= seq:
            self.send(held.popleft()[1])
        if self.role == LEADER:
            self.leader_persisted()

    def _flush(self) -> StepRecord:
        persist = restore = None
        if self._hard_state_dirty or self._unstable_entries or self._installed_snapshot is not None:
            self.persist_seq += 1
            entries = tuple(self._unstable_entries)
            hard_state = self.hard_state if self._hard_state_dirty else None
            installed = self._installed_snapshot
            if installed is None:
                persist = Persist(seq=self.persist_seq, hard_state=hard_state, entries=entries)
            else:
                snapshot, data = installed
                persist = Persist(
                    seq=self.persist_seq, hard_state=hard_state, entries=entries, snapshot=snapshot, snapshot_data=data
                )
                # The state machine jumps to the snapshot before any later entry applies.
                restore = Restore(snapshot=snapshot, data=data)
                self._installed_snapshot = None
            if entries:
                last_index, last_term = entries[-1].index, entries[-1].term
            elif installed is not None:
                last_index, last_term = installed[0].last_included_index, installed[0].last_included_term
            else:
                last_index = last_term = 0
            self.unstable_persists.append((self.persist_seq, last_index, last_term))
            self._hard_state_dirty = False
            self._unstable_entries = []
        if self._gated_this_step:
            if self.persist_seq <= self.persisted_seq:
                self._messages.extend(self._gated_this_step)
            else:
                for m in self._gated_this_step:
                    self.held_messages.append((self.persist_seq, m))
            self._gated_this_step = []
        self.open_read_round = 0
        committed = EMPTY
        apply_to = min(self.commit_index, self.stable_index)
        if apply_to > self.last_applied:
            lo = max(self.last_applied + 1, self.log.first_index)
            committed = tuple(self.log.between(lo, apply_to + 1))
            self.last_applied = apply_to
        # A part with nothing in it is the shared empty tuple; a list that was handed
        # out is replaced, one that stayed empty is kept for the next step.
        messages = self._messages
        if messages:
            self._messages = []
        else:
            messages = EMPTY
        replies = self._replies
        if replies:
            self._replies = []
        else:
            replies = EMPTY
        traces = self._traces
        if traces:
            self._traces = []
        else:
            traces = EMPTY
        soft = self._soft
        if (
            soft.commit_index != self.commit_index
            or soft.leader_id != self.leader_id
            or soft.role is not self.role
            or soft.term != self.current_term
        ):
            soft = self._soft = self._soft_state()
        config = self._config_state
        if (
            self.config_entries is not self._config_entries_shown
            or config.pending_index != self.pending_config_index
            or 0 < self._config_commit_watch <= self.commit_index
        ):
            config = self._config_state = self._make_config_state()
        return StepRecord(soft, config, messages, persist, replies, restore, committed, traces)

    def _soft_state(self) -> SoftState:
        return SoftState(self.leader_id, self.role, self.current_term, self.commit_index)

    def _make_config_state(self) -> ConfigState:
        """The configuration part of a record, built only when it may have changed: new
        config entries (appended, truncated, compacted, replaced by a snapshot), a new
        pending change, or the commit index reaching a configuration entry."""
        entries = self.config_entries
        self._config_entries_shown = entries
        log = self.log
        config_entries = tuple(
            ConfigEntry(i, log.term_at(i), c, config_context(log.entry(i).data)) for i, c in entries
        )
        committed_index = 0
        self._config_commit_watch = 0  # the next entry whose commit changes committed_index
        for entry in reversed(config_entries):
            if entry.index <= self.commit_index:
                committed_index = entry.index
                break
            self._config_commit_watch = entry.index
        return ConfigState(self.config, self.base_config, config_entries, committed_index, self.pending_config_index)


_kind = attrgetter("kind")
_MESSAGE_TYPES = (
    AppendEntriesRequest,
    AppendEntriesResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNow,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
)
