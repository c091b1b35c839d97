"""Log replication (§5.3), commitment (§5.4.2) and proposals."""
from __future__ import annotations

from itertools import count, repeat

from .effects import Accepted, Rejected
from .messages import (
    ENTRY_NORMAL,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Propose,
    TimeoutNow,
    append_entries,
    append_entries_accepted,
    append_entries_rejected,
    entry_from_tuple,
)
from .progress import PROBE, REPLICATE, SNAPSHOT, Progress
from .roles import CANDIDATE, LEADER, PRE_CANDIDATE
from .state import RaftState


class ReplicationMixin(RaftState):
    # ------------------------------------------------------------------ leader side

    def init_progress(self) -> None:
        self.progress = {}
        for peer in self.config.members:
            if peer != self.id:
                self.progress[peer] = Progress(self.log.last_index + 1, self.options.max_inflight)

    def handle_propose(self, event: Propose) -> None:
        if self.role != LEADER:
            self.not_leader(event.tag)
            return
        if self.lead_transferee is not None:
            self.reply(event.tag, Rejected(f"leadership is being transferred to {self.lead_transferee}"))
            return
        if not event.commands:
            self.reply(event.tag, Rejected("empty proposal"))
            return
        term = self.current_term
        first = self.log.last_index + 1
        entries = list(map(entry_from_tuple, zip(repeat(term), count(first), event.commands, repeat(ENTRY_NORMAL))))
        self.append_local(entries, may_hold_config=False)
        self.reply(event.tag, Accepted(term=term, first_index=first, last_index=entries[-1].index))
        self.broadcast_append()

    def broadcast_append(self) -> None:
        for peer in self.progress:
            self.send_append(peer)

    def broadcast_heartbeat(self, read_round: int = 0) -> None:
        for peer, pr in self.progress.items():
            if pr.state != PROBE and pr.stalled(self.tick_count, self.options.election_ticks):
                # Requests (or the snapshot) were lost (Raft tolerates loss): probe again
                # from what matches, which sends a fresh snapshot if one is still needed.
                if pr.state == SNAPSHOT:
                    self.trace("SnapshotStalled", peer=peer, last_included_index=pr.pending_snapshot)
                else:
                    self.trace("ReplicationStalled", peer=peer, match_index=pr.match_index)
                pr.become_probe()
                self.send_append(peer)
                continue
            if read_round == 0 and pr.state == REPLICATE and pr.next_index <= self.log.last_index and not pr.paused():
                self.send_append(peer)
            else:
                self.send_heartbeat(peer, read_round)

    def send_heartbeat(self, peer: int, read_round: int = 0) -> None:
        pr = self.progress[peer]
        # An empty AppendEntries anchored where we know the follower matches: it
        # passes the consistency check and carries the commit index no further
        # than the follower's log is known to agree with ours.  If that anchor was
        # compacted away (term 0: no real entry has it) the follower refuses it unless
        # its commit index covers it; either way the heartbeat holds off its election
        # timer and acknowledges the read round.
        prev = pr.match_index
        self.send(
            append_entries(
                term=self.current_term,
                source=self.id,
                dest=peer,
                prev_log_index=prev,
                prev_log_term=self.log.term_at(prev) or 0,
                entries=(),
                leader_commit=min(self.commit_index, prev),
                read_round=read_round or self.read_round,
            )
        )

    def send_append(self, peer: int, *, allow_empty: bool = True) -> bool:
        pr = self.progress[peer]
        if pr.paused():
            return False
        prev = pr.next_index - 1
        prev_term = self.log.term_at(prev)
        if prev_term is None:
            # The entries this follower needs were compacted away (Figure 13).
            self.send_snapshot(peer)
            return False
        entries = self.log.slice(
            pr.next_index,
            self.log.last_index + 1,
            self.options.max_entries_per_message,
            self.options.max_bytes_per_message,
        )
        if not entries and (not allow_empty or pr.state == REPLICATE):
            return False
        self.send(
            append_entries(
                term=self.current_term,
                source=self.id,
                dest=peer,
                prev_log_index=prev,
                prev_log_term=prev_term,
                entries=entries,
                leader_commit=self.commit_index,
                read_round=self.read_round,
            )
        )
        pr.sent(entries[-1].index if entries else prev, self.tick_count)
        return True

    def handle_append_entries_response(self, m: AppendEntriesResponse) -> None:
        pr = self.progress.get(m.source)
        if pr is None:
            return
        pr.recent_active = True
        if m.read_round:
            self.ack_read_round(m.source, m.read_round)
        if not m.success:
            self._handle_rejection(pr, m)
            return
        was_probe = pr.state == PROBE
        news = pr.update(m.match_index)
        if pr.state == SNAPSHOT:
            # A heartbeat (or an older request) answered while the snapshot is on its
            # way.  If the follower now matches inside our log, AppendEntries can take
            # it from there; otherwise the snapshot is still the way forward.
            if pr.match_index < self.log.snapshot_index:
                if news:
                    self.advance_commit()
                return
            was_probe = True
        if news or was_probe:
            if pr.state != REPLICATE:
                pr.become_replicate()
            if self.advance_commit() and self.role != LEADER:
                return  # the commit removed us from the configuration: we stepped down
            # Keep the pipe full: stream whatever this follower still lacks.
            while self.send_append(m.source, allow_empty=False):
                pass
        self.maybe_send_timeout_now(m.source)

    def maybe_send_timeout_now(self, peer: int) -> None:
        """Thesis §3.10: the transferee has caught up; tell it to campaign now."""
        if peer == self.lead_transferee and self.progress[peer].match_index == self.log.last_index:
            self.trace("SendTimeoutNow", to=peer)
            self.send(TimeoutNow(term=self.current_term, source=self.id, dest=peer))

    def _handle_rejection(self, pr: Progress, m: AppendEntriesResponse) -> None:
        rejected = m.rejected_index
        if pr.state == SNAPSHOT:
            return  # a heartbeat anchored in what we compacted: the snapshot answers it
        if pr.state == PROBE and self.log.term_at(rejected) is None:
            # Anchored in the prefix we compacted (a heartbeat at a match_index behind
            # our snapshot carries term 0): the refusal says nothing about the
            # follower's log, only that it is alive.  Without compaction the heartbeat
            # would have succeeded and resumed a probe that was lost; do that here,
            # which sends the snapshot if the follower needs one.
            pr.probe_sent = False
            self.send_append(m.source)
            return
        if pr.state == REPLICATE:
            if rejected <= pr.match_index:
                return  # stale: answers a request older than what we know matches
        elif rejected != pr.next_index - 1:
            return  # stale: not the probe we are waiting for
        # Fast backtracking (§5.3): jump over a whole conflicting term at once.
        if m.conflict_term:
            last = self.log.last_index_of_term(m.conflict_term)
            next_index = last + 1 if last is not None else m.conflict_index
        else:
            next_index = m.conflict_index
        next_index = max(pr.match_index + 1, min(next_index, rejected))
        self.trace("AppendRejected", peer=m.source, next_index=next_index)
        pr.become_probe()
        pr.next_index = next_index
        self.send_append(m.source)

    def leader_persisted(self) -> None:
        self.advance_commit()

    def advance_commit(self) -> bool:
        """maybe_commit, telling followers at once only when a configuration entry commits.

        An ordinary new commit index rides on the next AppendEntries or heartbeat (at
        most a tick later): followers need it only to apply, and a frame per follower
        per commit was a third of the frames a write cost.  A committed configuration
        is announced at once, so members act on it (a removed leader has stepped down).
        """
        before = self.commit_index
        if not self.maybe_commit():
            return False
        if self.role == LEADER and before < self.pending_config_index <= self.commit_index:
            self.broadcast_commit()
        return True

    def maybe_commit(self) -> bool:
        """§5.3/§5.4.2: commit the highest index stored on a majority, if of our term."""
        match = {peer: pr.match_index for peer, pr in self.progress.items()}
        match[self.id] = self.stable_index
        index = self.config.committed_index(match)
        if index > self.commit_index and self.may_commit(index):
            self.commit_index = index
            self.trace("AdvanceCommitIndex", commit_index=index)
            self.on_commit_advanced()
            return True
        return False

    def may_commit(self, index: int) -> bool:
        # Only entries of the current term are committed by counting replicas
        # (§5.4.2, Figure 8); earlier ones are committed indirectly.
        return self.log.term_at(index) == self.current_term

    def broadcast_commit(self) -> None:
        """Tell followers that have nothing left to receive about the new commit index
        (used when a configuration entry commits, so members learn it at once)."""
        for peer, pr in self.progress.items():
            if pr.match_index == self.log.last_index and pr.state == REPLICATE:
                self.send_heartbeat(peer)

    # ------------------------------------------------------------------ follower side

    def handle_append_entries_request(self, m: AppendEntriesRequest) -> None:
        if self.role in (CANDIDATE, PRE_CANDIDATE):
            # §5.2: a candidate that hears from a leader of its term steps down.
            self.become_follower(self.current_term, m.source)
        self.leader_id = m.source
        self.election_elapsed = 0
        prev, prev_term, entries = m.prev_log_index, m.prev_log_term, m.entries
        if prev < self.commit_index:
            # Entries up to our commit index are committed and so identical in the
            # leader's log (Leader Completeness): skip them and check at commit.
            skip = self.commit_index - prev
            entries = entries[skip:]
            prev = self.commit_index
            prev_term = self.log.term_at(prev)
        if prev_term is None or not self.log.matches(prev, prev_term):
            self._reject_append(m)
            return
        # Find the first entry that is new or conflicts (§5.3 rule 3): never truncate
        # on a request that brings nothing new (it may be a stale duplicate).
        log = self.log
        for pos, entry in enumerate(entries):
            term = log.term_at(entry.index)
            if term != entry.term:
                if term is not None:
                    self.trace("TruncateLog", from_index=entry.index)
                self.append_local(list(entries[pos:]))
                break
        last_new = prev + len(entries)
        commit = min(m.leader_commit, last_new)
        if commit > self.commit_index:
            self.commit_index = commit
            self.on_commit_advanced()
        self.send_after_persist(
            append_entries_accepted(
                term=self.current_term,
                source=self.id,
                dest=m.source,
                match_index=last_new,
                read_round=m.read_round,
            )
        )

    def _reject_append(self, m: AppendEntriesRequest) -> None:
        log = self.log
        if m.prev_log_index > log.last_index:
            conflict_index, conflict_term = log.last_index + 1, 0
        else:
            conflict_term = log.term_at(m.prev_log_index) or 0
            conflict_index = log.first_index_of_term(m.prev_log_index, self.commit_index)
        self.trace("RejectAppend", leader=m.source, prev_log_index=m.prev_log_index)
        self.send(
            append_entries_rejected(
                term=self.current_term,
                source=self.id,
                dest=m.source,
                rejected_index=m.prev_log_index,
                conflict_index=conflict_index,
                conflict_term=conflict_term,
                read_round=m.read_round,
            )
        )
