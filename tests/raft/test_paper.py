"""One test per rule of Figure 2 of the Raft paper (Ongaro & Ousterhout, 2014) and
of §5 that it summarizes: terms (§5.1), leader election (§5.2), log replication
(§5.3), the election restriction (§5.4.1) and the commitment rule (§5.4.2).
The thesis' additions (ReadIndex, pre-vote, check-quorum, transfer, membership)
are in test_thesis.py.

Each test is named after the rule and cites it.  Multi-server stories live in
the scenario transcripts (testdata/); these tests pin each rule on one core.
"""
from __future__ import annotations

import pytest

from abcd.raft.core import Options
from abcd.raft.effects import Accepted, NotLeader
from abcd.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    Persisted,
    Propose,
    RequestVoteRequest,
    RequestVoteResponse,
    Tick,
)
from abcd.raft.roles import CANDIDATE, FOLLOWER, LEADER

from .cores import (
    effects_of,
    PLAIN,
    ack,
    append,
    applied,
    fire_election_timeout,
    follower_with_leader,
    make,
    make_leader,
    persist,
    persists,
    replies,
    sent,
    settled_leader,
    trace_names,
)

# =========================================================================== §5.1 terms


@pytest.mark.parametrize(
    "message",
    [
        AppendEntriesRequest(5, 2, 1, 0, 0, (), 0),
        AppendEntriesResponse(5, 2, 1, False),
        RequestVoteRequest(5, 2, 1, 0, 0),  # a stale log: the vote is refused (§5.4.1)
        RequestVoteResponse(5, 2, 1, False),
    ],
    ids=["AppendEntries", "AppendEntriesResponse", "RequestVote", "RequestVoteResponse"],
)
def test_higher_term_in_any_message_makes_leader_step_down(message):
    """§5.1, Figure 2 (all servers): "If RPC request or response contains term T >
    currentTerm: set currentTerm = T, convert to follower", and the new term is
    persisted with no vote."""
    core = settled_leader(term=1)
    effects = core.step(message)
    assert core.role == FOLLOWER
    assert core.current_term == 5
    assert core.voted_for is None
    assert [p.hard_state for p in persists(effects)] == [core.hard_state]


def test_append_entries_from_stale_term_is_rejected_with_current_term():
    """§5.1: "If a server receives a request with a stale term number, it rejects the
    request."  The reply carries our term so that the deposed leader steps down."""
    core = follower_with_leader(term=3, leader=1, terms=(1, 3))
    effects = append(core, term=2, leader=4, prev=(2, 3), entries=[(3, 2)], commit=2)
    (reply,) = sent(effects)
    assert reply == AppendEntriesResponse(3, 2, 4, False, rejected_index=2)
    assert core.log.last_index == 2 and core.commit_index == 0 and core.leader_id == 1


def test_request_vote_from_stale_term_is_not_granted():
    """Figure 2, RequestVote receiver 1: "Reply false if term < currentTerm"."""
    core = make(2, term=3)
    effects = core.step(RequestVoteRequest(2, 3, 2, 5, 2))
    assert not [m for m in sent(effects) if m.vote_granted]
    assert core.voted_for is None and core.current_term == 3


def test_response_with_stale_term_is_ignored():
    """§5.1: a response from an older term says nothing about the current one."""
    core = make_leader(terms=(1,), term=1)  # leader of term 2
    persist(core)
    effects = core.step(AppendEntriesResponse(1, 2, 1, True, 2))
    assert core.progress[2].match_index == 0
    assert core.commit_index == 0 and effects_of(effects) == []


# =========================================================================== §5.2 leader election


def test_election_timeout_is_randomized_in_t_to_2t():
    """§5.2: "election timeouts are chosen randomly from a fixed interval" [T, 2T), so
    that split votes are rare; each core draws from its own seeded RNG."""
    timeouts = set()
    for seed in range(200):
        core = make(seed=seed, options=Options(election_ticks=10))
        timeouts.add(core.randomized_election_timeout)
    assert min(timeouts) >= 10 and max(timeouts) < 20
    assert len(timeouts) >= 8


def test_election_timeout_is_redrawn_for_each_term():
    """§5.2: a fresh random timeout after every election, so that two servers that
    collided once are unlikely to collide again."""
    core = make(seed=7)
    seen = set()
    for _ in range(20):
        fire_election_timeout(core)
        seen.add(core.randomized_election_timeout)
    assert len(seen) > 1


def test_follower_becomes_candidate_when_election_timeout_elapses():
    """Figure 2, followers: "If election timeout elapses without receiving AppendEntries
    from current leader or granting vote to candidate: convert to candidate"; a
    candidate increments its term and votes for itself (§5.2)."""
    core = make(term=4)
    for _ in range(core.randomized_election_timeout - 1):
        assert effects_of(core.step(Tick())) == []
    effects = core.step(Tick())
    assert core.role == CANDIDATE
    assert (core.current_term, core.voted_for) == (5, 1)
    assert [p.hard_state for p in persists(effects)] == [core.hard_state]


def test_append_entries_from_leader_resets_election_timer():
    """Figure 2, followers: hearing from the current leader keeps a follower a follower."""
    core = follower_with_leader(term=1)
    for _ in range(3 * core.options.election_ticks):
        core.step(Tick())
        append(core, term=1)
    assert core.role == FOLLOWER


def test_granting_a_vote_resets_election_timer():
    """Figure 2, followers: granting a vote also restarts the election timeout (here
    in the voter's own term, so that no term change resets it anyway)."""
    core = make(2, term=2)
    for _ in range(core.randomized_election_timeout - 1):
        core.step(Tick())
    core.step(RequestVoteRequest(2, 3, 2, 0, 0))
    core.step(Tick())
    assert core.role == FOLLOWER and core.voted_for == 3


def test_candidate_requests_votes_from_every_other_voter():
    """§5.2: a candidate "issues RequestVote RPCs in parallel to each of the other
    servers", carrying its last log index and term (§5.4.1)."""
    core = make(1, voters=(1, 2, 3, 4, 5), term=2, terms=(1, 2))
    fire_election_timeout(core)
    effects = persist(core)
    assert sent(effects) == [RequestVoteRequest(3, 1, peer, 2, 2) for peer in (2, 3, 4, 5)]


def test_candidate_with_votes_from_majority_becomes_leader():
    """§5.2: "A candidate wins an election if it receives votes from a majority of the
    servers in the full cluster for the same term"; its own vote counts."""
    core = make(1, voters=(1, 2, 3, 4, 5))
    fire_election_timeout(core)
    persist(core)
    core.step(RequestVoteResponse(1, 2, 1, True))
    assert core.role == CANDIDATE
    core.step(RequestVoteResponse(1, 2, 1, True))  # a duplicate does not count twice
    assert core.role == CANDIDATE
    effects = core.step(RequestVoteResponse(1, 3, 1, True))
    assert core.role == LEADER and "BecomeLeader" in trace_names(effects)


def test_candidate_rejected_by_majority_returns_to_follower():
    """§5.2: a candidate refused by a majority cannot win this term."""
    core = make(1)
    fire_election_timeout(core)
    persist(core)
    core.step(RequestVoteResponse(1, 2, 1, False))
    assert core.role == CANDIDATE
    core.step(RequestVoteResponse(1, 3, 1, False))
    assert core.role == FOLLOWER and core.current_term == 1


def test_candidate_steps_down_on_append_entries_from_leader_of_its_term():
    """§5.2: "If the leader's term ... is at least as large as the candidate's current
    term, then the candidate recognizes the leader as legitimate and returns to
    follower state."""
    core = make(2)
    fire_election_timeout(core)
    append(core, term=1, leader=3)
    assert core.role == FOLLOWER and core.leader_id == 3 and core.current_term == 1


def test_candidate_starts_new_election_after_split_vote():
    """§5.2: "each candidate will time out and start a new election by incrementing its
    term and initiating another round of RequestVote RPCs"."""
    core = make(1)
    fire_election_timeout(core)
    persist(core)
    fire_election_timeout(core)
    assert core.role == CANDIDATE and core.current_term == 2 and core.voted_for == 1
    assert len(sent(persist(core), RequestVoteRequest)) == 2


def test_one_vote_per_term_first_come_first_served():
    """Figure 2, RequestVote receiver 2 and §5.2: "each server will vote for at most one
    candidate in a given term, on a first-come-first-served basis"."""
    core = make(3)
    core.step(RequestVoteRequest(1, 1, 3, 0, 0))
    persist(core)
    effects = core.step(RequestVoteRequest(1, 2, 3, 0, 0))
    assert sent(effects) == [RequestVoteResponse(1, 3, 2, False)]
    assert core.voted_for == 1


def test_follower_of_a_leader_refuses_other_candidates_of_that_term():
    """§5.2: a term has at most one leader; a follower that already follows the leader
    of this term does not help another candidate of the same term."""
    core = follower_with_leader(term=2, leader=1)
    effects = core.step(RequestVoteRequest(2, 3, 2, 0, 0))
    assert sent(effects) == [RequestVoteResponse(2, 2, 3, False)]


def test_votes_from_non_voters_do_not_count():
    """§5.2 counts votes "from a majority of the servers in the full cluster": a learner
    or a stranger cannot make up a majority."""
    core = make(1, voters=(1, 2, 3), learners=(4,))
    fire_election_timeout(core)
    persist(core)
    core.step(RequestVoteResponse(1, 4, 1, True))
    core.step(RequestVoteResponse(1, 9, 1, True))
    assert core.role == CANDIDATE
    core.step(RequestVoteResponse(1, 3, 1, True))
    assert core.role == LEADER


def test_repeated_request_from_same_candidate_is_granted_again():
    """Figure 2: "If votedFor is null or candidateId ... grant vote": a retransmitted
    request gets the same answer (a lost response must not cost the election)."""
    core = make(3)
    core.step(RequestVoteRequest(1, 1, 3, 0, 0))
    persist(core)
    effects = core.step(RequestVoteRequest(1, 1, 3, 0, 0))
    assert sent(effects) == [RequestVoteResponse(1, 3, 1, True)]
    assert persists(effects) == []  # nothing new to persist: the vote is durable


def test_vote_is_durable_before_it_is_sent():
    """Figure 2, persistent state "updated on stable storage before responding to RPCs"
    (thesis §3.8): the grant is held until the Persisted covering the vote."""
    core = make(3)
    effects = core.step(RequestVoteRequest(1, 1, 3, 0, 0))
    assert sent(effects) == []
    assert [p.hard_state.voted_for for p in persists(effects)] == [1]
    assert sent(persist(core)) == [RequestVoteResponse(1, 3, 1, True)]


def test_candidate_requests_votes_only_once_its_vote_is_durable():
    """Thesis §3.8: the candidate's term and self-vote are persisted before anyone
    sees its RequestVote, or a restart could vote twice in the term."""
    core = make(1)
    effects = fire_election_timeout(core)
    assert sent(effects) == []
    assert len(sent(persist(core), RequestVoteRequest)) == 2


# =========================================================================== §5.4.1 election restriction


@pytest.mark.parametrize(
    "candidate_last, granted",
    [
        ((3, 2), True),  # same last term, same length
        ((4, 2), True),  # same last term, longer
        ((2, 2), False),  # same last term, shorter
        ((2, 3), True),  # newer last term wins even if shorter
        ((9, 1), False),  # older last term loses even if much longer
    ],
    ids=["equal", "longer", "shorter", "newer-term-shorter", "older-term-longer"],
)
def test_vote_only_for_candidate_at_least_as_up_to_date(candidate_last, granted):
    """§5.4.1: "If the logs have last entries with different terms, then the log with
    the later term is more up-to-date.  If the logs end with the same term, then
    whichever log is longer is more up-to-date."  The voter's log is 1@1 2@1 3@2."""
    core = make(3, term=2, terms=(1, 1, 2))
    index, term = candidate_last
    effects = core.step(RequestVoteRequest(3, 1, 3, index, term))
    released = persist(core)  # a grant waits for its persist; a refusal promises nothing
    assert [m.vote_granted for m in sent(effects) + sent(released)] == [granted]
    assert core.voted_for == (1 if granted else None)


# =========================================================================== §5.3 log replication


def test_append_entries_rejected_when_log_lacks_prev_entry():
    """Figure 2, AppendEntries receiver 2: "Reply false if log doesn't contain an entry at
    prevLogIndex whose term matches prevLogTerm"; the hint says the log is shorter."""
    core = follower_with_leader(term=2, terms=(1, 1))
    effects = append(core, term=2, prev=(5, 2), entries=[(6, 2)])
    assert sent(effects) == [AppendEntriesResponse(2, 2, 1, False, rejected_index=5, conflict_index=3, conflict_term=0)]
    assert core.log.last_index == 2


def test_append_entries_rejected_when_prev_term_differs_with_conflict_hint():
    """Figure 2, receiver 2 and the optimization after Figure 8: the rejection names the
    conflicting term and the first index this follower holds for it."""
    core = follower_with_leader(term=4, terms=(1, 2, 2, 2))
    effects = append(core, term=4, prev=(4, 3), entries=[(5, 4)])
    assert sent(effects) == [AppendEntriesResponse(4, 2, 1, False, rejected_index=4, conflict_index=2, conflict_term=2)]
    assert [e.term for e in core.log.entries] == [1, 2, 2, 2]


@pytest.mark.parametrize(
    "follower_terms, hint, retry_prev",
    [
        ((1, 1, 1, 1, 1), (1, 1), (2, 1)),  # the leader has term 1: resume after its last 1
        ((1, 2, 2, 2, 2), (2, 2), (1, 1)),  # the leader never had term 2: skip all of it
        ((1, 1), (3, 0), (2, 1)),  # the follower's log is shorter: resume at its end
    ],
    ids=["leader-has-term", "leader-lacks-term", "follower-shorter"],
)
def test_conflict_hint_lets_leader_skip_a_whole_term_in_one_round(follower_terms, hint, retry_prev):
    """§5.3, after Figure 8: "When rejecting an AppendEntries request, the follower can
    include the term of the conflicting entry and the first index it stores for that
    term.  With this information, the leader can decrement nextIndex to bypass all of
    the conflicting entries in that term; one AppendEntries RPC will be required for
    each term with conflicting entries, rather than one RPC per entry."
    Leader log: 1@1 2@1 3@3 4@3 5@3, elected in term 4 (no-op 6@4)."""
    leader = make_leader(1, terms=(1, 1, 3, 3, 3), term=3)
    follower = make(2, term=3, terms=follower_terms)
    persist(leader)
    assert leader.progress[2].next_index == 6  # so its first probe was anchored at 5@3:
    probe = AppendEntriesRequest(4, 1, 2, 5, 3, (Entry(4, 6),), 0)
    (rejection,) = sent(follower.step(probe))
    assert (rejection.success, rejection.conflict_index, rejection.conflict_term) == (False, *hint)
    (retry,) = sent(leader.step(rejection), AppendEntriesRequest)
    assert (retry.prev_log_index, retry.prev_log_term) == retry_prev
    follower.step(retry)
    (answer,) = sent(persist(follower))
    assert answer.success and answer.match_index == 6
    assert [(e.index, e.term) for e in follower.log.entries] == [(e.index, e.term) for e in leader.log.entries]


def test_conflicting_entry_and_all_that_follow_are_deleted():
    """Figure 2, AppendEntries receiver 3: "If an existing entry conflicts with a new one
    (same index but different terms), delete the existing entry and all that follow
    it"; the replacement is persisted from the conflict on."""
    core = follower_with_leader(term=1, terms=(1, 1, 1, 1))
    effects = append(core, term=3, leader=5, prev=(2, 1), entries=[(3, 3)])
    assert [(e.index, e.term) for e in core.log.entries] == [(1, 1), (2, 1), (3, 3)]
    assert "TruncateLog" in trace_names(effects)
    (p,) = persists(effects)
    assert [(e.index, e.term) for e in p.entries] == [(3, 3)]


def test_new_entries_not_in_log_are_appended():
    """Figure 2, AppendEntries receiver 4: "Append any new entries not already in the log"."""
    core = follower_with_leader(term=2, terms=(1, 2))
    effects = append(core, term=2, prev=(2, 2), entries=[(3, 2), (4, 2)])
    assert [(e.index, e.term) for e in core.log.entries] == [(1, 1), (2, 2), (3, 2), (4, 2)]
    assert [[e.index for e in p.entries] for p in persists(effects)] == [[3, 4]]
    assert sent(persist(core)) == [AppendEntriesResponse(2, 2, 1, True, 4)]


def test_stale_duplicate_append_does_not_truncate_newer_entries():
    """Figure 2, receiver 3 deletes only on a *conflict*: an old, reordered request
    whose entries are all present must not cut off entries that came later."""
    core = follower_with_leader(term=2, terms=(1, 2, 2, 2))
    effects = append(core, term=2, prev=(1, 1), entries=[(2, 2)])
    assert core.log.last_index == 4
    assert persists(effects) == []
    assert sent(effects) == [AppendEntriesResponse(2, 2, 1, True, 2)]


def test_commit_index_is_min_of_leader_commit_and_last_new_entry():
    """Figure 2, AppendEntries receiver 5: "If leaderCommit > commitIndex, set
    commitIndex = min(leaderCommit, index of last new entry)"."""
    core = follower_with_leader(term=1, terms=(1, 1, 1, 1, 1))
    append(core, term=1, prev=(2, 1), entries=[(3, 1)], commit=5)
    assert core.commit_index == 3  # entries 4..5 were not vouched for by this request
    append(core, term=1, prev=(4, 1), commit=4)
    assert core.commit_index == 4


def test_append_ack_is_sent_only_after_entries_are_durable():
    """Figure 2 (persistent state) and thesis §3.8: success means "stored", so the
    acknowledgement waits for the Persisted covering the entries."""
    core = follower_with_leader(term=1)
    effects = append(core, term=1, entries=[(1, 1)])
    assert sent(effects) == [] and len(persists(effects)) == 1
    assert sent(persist(core)) == [AppendEntriesResponse(1, 2, 1, True, 1)]


def test_each_acknowledgement_waits_for_its_own_write():
    """Thesis §3.8: an acknowledgement is released by the Persisted covering its entries,
    not by an earlier one."""
    core = follower_with_leader(term=1)
    append(core, term=1, entries=[(1, 1)])
    append(core, term=1, prev=(1, 1), entries=[(2, 1)])
    assert core.persist_seq == 2
    assert sent(core.step(Persisted(1))) == [AppendEntriesResponse(1, 2, 1, True, 1)]
    assert sent(core.step(Persisted(2))) == [AppendEntriesResponse(1, 2, 1, True, 2)]


def test_entry_is_applied_only_once_the_write_holding_it_is_durable():
    """An entry that replaced an unpersisted one becomes durable with its own write: the
    completion of the earlier write (whose last entry is gone) does not count for it."""
    core = follower_with_leader(term=1)
    append(core, term=1, entries=[(1, 1), (2, 1), (3, 1)])  # write 1
    append(core, term=2, leader=3, prev=(1, 1), entries=[(2, 2)], commit=2)  # write 2 replaces 2..3
    assert 2 not in applied(core.step(Persisted(1)))
    core.step(Persisted(2))
    assert core.last_applied == 2


def test_committed_entries_are_applied_in_order_once():
    """Figure 2, all servers: "If commitIndex > lastApplied: increment lastApplied,
    apply log[lastApplied] to state machine"; only durable entries are applied."""
    core = follower_with_leader(term=1)
    effects = append(core, term=1, entries=[(1, 1), (2, 1), (3, 1)], commit=2)
    assert applied(effects) == []  # not durable yet
    assert applied(persist(core)) == [1, 2]
    assert applied(append(core, term=1, prev=(3, 1), commit=3)) == [3]
    assert applied(append(core, term=1, prev=(3, 1), commit=3)) == []
    assert core.last_applied == 3


def test_leader_appends_proposal_and_sends_it_to_followers():
    """Figure 2, leaders: "If command received from client: append entry to local log";
    §5.3: then issue AppendEntries to each follower.  The reply says where it landed."""
    core = settled_leader(term=1)  # leader of term 2, no-op at 1
    effects = core.step(Propose(7, (b"x", b"y")))
    assert [r.result for r in replies(effects)] == [Accepted(2, 2, 3)]
    assert [(e.index, e.term, e.data) for e in core.log.entries[1:]] == [(2, 2, b"x"), (3, 2, b"y")]
    requests = sent(effects, AppendEntriesRequest)
    assert sorted(m.dest for m in requests) == [2, 3]
    assert all((m.prev_log_index, m.prev_log_term, len(m.entries)) == (1, 2, 2) for m in requests)


def test_proposal_to_follower_is_refused_with_leader_hint():
    """§8: clients talk to the leader; a follower redirects them."""
    core = follower_with_leader(term=1, leader=3)
    (reply,) = replies(core.step(Propose(1, (b"x",))))
    assert reply.result == NotLeader(3)
    assert core.log.last_index == 0


def test_leader_sends_heartbeats_every_heartbeat_interval():
    """Figure 2, leaders: "send initial empty AppendEntries RPCs (heartbeat) to each
    server; repeat during idle periods to prevent election timeouts" (§5.2)."""
    core = settled_leader(options=Options(pre_vote=False, check_quorum=False, heartbeat_ticks=2))
    assert sent(core.step(Tick())) == []
    beats = sent(core.step(Tick()))
    assert sorted(m.dest for m in beats) == [2, 3]
    assert all(type(m) is AppendEntriesRequest and m.entries == () for m in beats)
    assert all(m.leader_commit == core.commit_index for m in beats)


def test_stale_rejection_is_ignored_by_a_replicating_leader():
    """§5.3: messages may be duplicated and reordered; a rejection for a position the
    leader already knows matches answers an older request and changes nothing."""
    core = settled_leader()
    core.step(Propose(1, (b"x",)))
    ack(core, 2, 2)
    effects = core.step(AppendEntriesResponse(1, 2, 1, False, rejected_index=1, conflict_index=1, conflict_term=0))
    assert effects_of(effects) == []
    assert (core.progress[2].state, core.progress[2].match_index, core.progress[2].next_index) == ("replicate", 2, 3)


def test_leader_updates_match_index_from_successful_response():
    """Figure 2, leaders: "If successful: update nextIndex and matchIndex for follower"."""
    core = make_leader(terms=(1, 1), term=1)
    ack(core, 2, 3)
    assert (core.progress[2].match_index, core.progress[2].next_index) == (3, 4)


# =========================================================================== §5.4.2 commitment


def test_leader_commits_entry_of_its_term_stored_on_majority():
    """Figure 2, leaders: "If there exists an N such that N > commitIndex, a majority of
    matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N"."""
    core = make_leader(1, (1, 2, 3, 4, 5))
    persist(core)
    ack(core, 2, 1)
    assert core.commit_index == 0  # 2 of 5
    effects = ack(core, 3, 1)
    assert core.commit_index == 1 and "AdvanceCommitIndex" in trace_names(effects)
    assert applied(effects) == [1]


def test_leader_counts_itself_only_once_its_own_write_is_durable():
    """§10.2.1 of the thesis: the leader may send before its own write completes, but
    its own copy counts toward a majority only once durable."""
    core = make_leader(1, (1, 2, 3, 4, 5))
    ack(core, 2, 1)
    ack(core, 3, 1)
    assert core.commit_index == 0
    persist(core)
    assert core.commit_index == 1


def test_old_term_entry_on_majority_is_not_committed_by_counting():
    """§5.4.2 and Figure 8: "Raft never commits log entries from previous terms by
    counting replicas"."""
    core = make_leader(1, terms=(1, 2), term=2)  # leader of term 3, no-op at 3
    persist(core)
    ack(core, 2, 2)
    ack(core, 3, 2)
    assert core.commit_index == 0


def test_old_term_entries_commit_with_first_entry_of_current_term():
    """§5.4.2: "once an entry from the current term has been committed in this way, then
    all prior entries are committed indirectly"."""
    core = make_leader(1, terms=(1, 2), term=2)
    persist(core)
    ack(core, 2, 2)
    effects = ack(core, 2, 3)
    assert core.commit_index == 3
    assert applied(effects) == [1, 2, 3]
