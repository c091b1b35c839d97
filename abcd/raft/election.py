"""Leader election (§5.2), pre-vote (thesis §9.6) and leadership transfer (thesis §3.10)."""
from __future__ import annotations

from .effects import Accepted, Rejected
from .roles import CANDIDATE, LEADER, PRE_CANDIDATE
from .messages import Entry, RequestVoteRequest, RequestVoteResponse, TimeoutNow, TransferLeadership
from .state import RaftState



class ElectionMixin(RaftState):
    def campaign(self, *, pre_vote: bool, transfer: bool = False) -> None:
        if pre_vote:
            self.become_pre_candidate()
            term = self.current_term + 1  # the term we would run in; ours does not change
        else:
            self.become_candidate()
            term = self.current_term
        self.votes_granted = {self.id: True}
        if self._tally_votes(pre_vote):
            return
        for peer in sorted(self.config.voters):
            if peer == self.id:
                continue
            m = RequestVoteRequest(
                term=term,
                source=self.id,
                dest=peer,
                last_log_index=self.log.last_index,
                last_log_term=self.log.last_term,
                pre_vote=pre_vote,
                transfer=transfer,
            )
            if pre_vote:
                self.send(m)
            else:
                # Our new term and our vote for ourselves must be durable before anyone
                # can act on them, or a restart could vote twice in this term.
                self.send_after_persist(m)

    def become_pre_candidate(self) -> None:
        # Pre-vote changes neither term nor vote: a partitioned server that keeps
        # timing out cannot inflate its term and later depose a healthy leader.
        self.role = PRE_CANDIDATE
        self.leader_id = None
        self._reset_role_state()
        self.trace("BecomePreCandidate")

    def become_candidate(self) -> None:
        self.current_term += 1
        self.voted_for = self.id
        self._hard_state_dirty = True
        self.role = CANDIDATE
        self.leader_id = None
        self._reset_role_state()
        self.trace("BecomeCandidate")

    def become_leader(self) -> None:
        self.role = LEADER
        self.leader_id = self.id
        self._reset_role_state()
        self.init_progress()
        self.trace("BecomeLeader")
        # §8: a no-op entry of the new term lets the leader learn what is committed
        # (it may only count replicas of its own term's entries, §5.4.2).
        self.append_local([Entry(self.current_term, self.log.last_index + 1)])
        # Thesis §4.1 (and the single-server bug fix): no configuration change until
        # an entry of this term is committed.
        self.pending_config_index = self.log.last_index
        self.broadcast_append()
        self.maybe_commit()

    def handle_request_vote_request(self, m: RequestVoteRequest) -> None:
        if self.can_grant_vote(m) and self.log.is_up_to_date(m.last_log_term, m.last_log_index):
            self.trace("GrantVote", candidate=m.source, pre_vote=m.pre_vote)
            if m.pre_vote:
                # Grant with the term of the request, so that the pre-candidate
                # counts it (our own term is unchanged).
                self.send(
                    RequestVoteResponse(term=m.term, source=self.id, dest=m.source, vote_granted=True, pre_vote=True)
                )
            else:
                self.election_elapsed = 0
                if self.voted_for != m.source:
                    self.voted_for = m.source
                    self._hard_state_dirty = True
                self.send_after_persist(
                    RequestVoteResponse(term=self.current_term, source=self.id, dest=m.source, vote_granted=True)
                )
        else:
            self.trace("RejectVote", candidate=m.source, pre_vote=m.pre_vote)
            self.send(
                RequestVoteResponse(
                    term=self.current_term, source=self.id, dest=m.source, vote_granted=False, pre_vote=m.pre_vote
                )
            )

    def can_grant_vote(self, m: RequestVoteRequest) -> bool:
        """Figure 2: one vote per term, first come first served."""
        if self.voted_for == m.source:
            return True
        if self.voted_for is None and self.leader_id is None:
            return True
        return m.pre_vote and m.term > self.current_term

    def handle_request_vote_response(self, m: RequestVoteResponse) -> None:
        if m.pre_vote != (self.role == PRE_CANDIDATE):
            return
        if self.role not in (PRE_CANDIDATE, CANDIDATE):
            return
        if m.source not in self.config.voters:
            return
        self.votes_granted.setdefault(m.source, m.vote_granted)
        self._tally_votes(m.pre_vote)

    def _tally_votes(self, pre_vote: bool) -> bool:
        """Act on a decided election; returns True if it is decided."""
        granted = [v for v, ok in self.votes_granted.items() if ok]
        rejected = [v for v, ok in self.votes_granted.items() if not ok]
        if self.config.has_quorum(granted):
            if pre_vote:
                self.campaign(pre_vote=False)
            else:
                self.become_leader()
            return True
        if self.config.has_quorum(rejected):
            self.become_follower(self.current_term, None)
            return True
        return False

    # ------------------------------------------------------------------ transfer (thesis §3.10)

    def handle_transfer_leadership(self, event: TransferLeadership) -> None:
        if self.role != LEADER:
            self.not_leader(event.tag)
            return
        if event.to == self.id:
            last = self.log.last_index
            self.reply(event.tag, Accepted(term=self.current_term, first_index=last, last_index=last))
            return
        if event.to not in self.config.voters:
            self.reply(event.tag, Rejected(f"node {event.to} is not a voting member"))
            return
        self.lead_transferee = event.to
        self.election_elapsed = 0  # the transfer must finish within one election timeout
        self.trace("TransferLeadership", to=event.to)
        pr = self.progress[event.to]
        if pr.match_index == self.log.last_index:
            self.send(TimeoutNow(term=self.current_term, source=self.id, dest=event.to))
        else:
            self.send_append(event.to)
        last = self.log.last_index
        self.reply(event.tag, Accepted(term=self.current_term, first_index=last, last_index=last))

    def handle_timeout_now(self, m: TimeoutNow) -> None:
        if self.role == LEADER or not self.promotable():
            return
        self.trace("TimeoutNow", from_leader=m.source)
        self.campaign(pre_vote=False, transfer=True)
