"""The rules the core takes from Ongaro's thesis ("Consensus: Bridging Theory and
Practice", 2014) beyond Figure 2: linearizable reads with ReadIndex (§6.4),
pre-vote (§9.6), check-quorum and the leader lease (§6.2, §4.2.3), leadership
transfer (§3.10) and single-server membership changes (ch. 4).

Each test is named after the rule and cites it.
"""
from __future__ import annotations

import pytest

from abcd.raft.core import Options
from abcd.raft.effects import Accepted, NotLeader, ReadReady, Rejected
from abcd.raft.messages import (
    ENTRY_CONFIG,
    AppendEntriesRequest,
    Propose,
    ProposeConfig,
    ReadIndex,
    RequestVoteRequest,
    RequestVoteResponse,
    Tick,
    TimeoutNow,
    TransferLeadership,
)
from abcd.raft.roles import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE

from .cores import (
    effects_of,
    ack,
    append,
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

PRE_VOTE = Options(pre_vote=True, check_quorum=False)
QUORUM = Options(pre_vote=True, check_quorum=True, election_ticks=4)

# =========================================================================== §6.4 ReadIndex


def test_read_waits_until_leader_commits_entry_of_its_term():
    """§6.4 step 1: a new leader does not know the commit index until an entry of its
    term commits, so a read waits for the no-op, then starts a heartbeat round."""
    core = make_leader()
    persist(core)
    effects = core.step(ReadIndex(1))
    assert replies(effects) == [] and sent(effects) == []
    effects = ack(core, 2, 1)
    assert core.read_round == 1
    assert {m.dest for m in sent(effects, AppendEntriesRequest) if m.read_round == 1} == {2, 3}


def test_read_is_ready_once_a_majority_acknowledges_a_later_round():
    """§6.4 steps 2-3: record commitIndex as the read index, then confirm leadership by
    a heartbeat round started after the read and acknowledged by a majority.  An
    acknowledgement of an earlier round does not confirm a later read; one of a
    later round confirms every earlier read too."""
    core = settled_leader(voters=(1, 2, 3, 4, 5))
    core.step(ReadIndex(8))  # round 1
    core.step(ReadIndex(9))  # round 2
    assert core.read_round == 2
    assert replies(ack(core, 2, 1, read_round=2)) == []  # rounds 1 and 2: n1, n2
    (ready,) = replies(ack(core, 3, 1, read_round=1))  # round 1: n1, n2, n3
    assert (ready.tag, ready.result) == (8, ReadReady(1))
    (ready,) = replies(ack(core, 4, 1, read_round=2))  # round 2: n1, n2, n4
    assert (ready.tag, ready.result) == (9, ReadReady(1))


def test_read_index_is_commit_index_when_read_arrives():
    """§6.4 step 2: the read index is the commit index at the time of the request, not
    at the time of the confirmation."""
    core = settled_leader()
    core.step(Propose(1, (b"x",)))
    persist(core)
    core.step(ReadIndex(2))
    ack(core, 2, 2)  # commits index 2; its read round is not acknowledged by this
    assert core.commit_index == 2
    (ready,) = replies(ack(core, 2, 2, read_round=1))
    assert ready.result == ReadReady(1)


def test_reads_in_one_step_share_one_heartbeat_round():
    """§6.4 (batching): reads that arrive together need one round, not one each."""
    core = settled_leader()
    effects = core.step_many([ReadIndex(1), ReadIndex(2), ReadIndex(3)])
    assert len(sent(effects)) == 2 and core.read_round == 1
    results = replies(ack(core, 2, 1, read_round=1))
    assert [(r.tag, r.result) for r in results] == [(t, ReadReady(1)) for t in (1, 2, 3)]


def test_single_voter_read_is_ready_once_its_no_op_commits():
    """§6.4: a lone voter is its own majority, so no round is needed; it still waits
    for its first entry of the term to commit."""
    core = make(1, voters=(1,))
    fire_election_timeout(core)
    assert core.role == LEADER
    assert replies(core.step(ReadIndex(1))) == []
    (reply,) = replies(persist(core))
    assert reply.result == ReadReady(1)
    (reply,) = replies(core.step(ReadIndex(2)))
    assert reply.result == ReadReady(1)


def test_read_on_follower_is_refused_with_leader_hint():
    """§6.4: only the leader serves ReadIndex; a follower names the leader."""
    core = follower_with_leader(leader=3)
    (reply,) = replies(core.step(ReadIndex(1)))
    assert reply.result == NotLeader(3)


def test_pending_reads_fail_when_leader_steps_down():
    """§6.4: a deposed leader cannot confirm its pending reads; they fail with NotLeader
    so that clients retry with the new leader."""
    core = settled_leader()
    core.step(ReadIndex(1))
    effects = core.step(AppendEntriesRequest(9, 3, 1, 0, 0, (), 0))
    assert [(r.tag, r.result) for r in replies(effects)] == [(1, NotLeader(3))]
    assert core.read_rounds == {}


# =========================================================================== §9.6 pre-vote


def test_pre_candidate_changes_neither_term_nor_vote():
    """§9.6: in the pre-vote phase a server asks whether it could win in term+1, without
    incrementing its term or voting, so nothing is written."""
    core = make(1, term=3, vote=2, terms=(3,), options=PRE_VOTE)
    effects = fire_election_timeout(core)
    assert core.role == PRE_CANDIDATE
    assert (core.current_term, core.voted_for) == (3, 2)
    assert persists(effects) == []
    assert sent(effects) == [RequestVoteRequest(4, 1, p, 1, 3, pre_vote=True) for p in (2, 3)]


def test_pre_vote_is_granted_without_changing_voter_state():
    """§9.6: a voter answers a pre-vote as it would a vote for term+1 (even if it
    voted in its own term), but keeps its term and vote: nothing is persisted."""
    core = make(2, term=3, vote=1, options=PRE_VOTE)
    effects = core.step(RequestVoteRequest(4, 3, 2, 0, 0, pre_vote=True))
    assert sent(effects) == [RequestVoteResponse(4, 2, 3, True, True)]
    assert (core.current_term, core.voted_for) == (3, 1) and persists(effects) == []


def test_pre_vote_for_a_term_already_voted_in_is_refused():
    """§9.6 with Figure 2's one vote per term: a pre-candidate one term behind asks for
    a term in which this voter already voted for someone else; a real vote would be
    refused, so the pre-vote is too."""
    core = make(2, term=3, vote=1, options=PRE_VOTE)
    effects = core.step(RequestVoteRequest(3, 3, 2, 0, 0, pre_vote=True))
    assert [m.vote_granted for m in sent(effects)] == [False]


def test_pre_vote_is_refused_to_a_stale_log():
    """§9.6 with §5.4.1: a pre-candidate whose log could not win is refused."""
    core = make(2, term=1, terms=(1, 1), options=PRE_VOTE)
    effects = core.step(RequestVoteRequest(2, 3, 2, 1, 1, pre_vote=True))
    assert [m.vote_granted for m in sent(effects)] == [False]


def test_pre_candidate_with_majority_starts_real_election():
    """§9.6: only with a majority of pre-votes does the server increment its term and
    run a real election."""
    core = make(1, term=3, options=PRE_VOTE)
    fire_election_timeout(core)
    effects = core.step(RequestVoteResponse(4, 2, 1, True, True))
    assert core.role == CANDIDATE and core.current_term == 4
    assert len(persists(effects)) == 1
    assert [m.pre_vote for m in sent(persist(core))] == [False, False]


def test_pre_candidate_refused_by_majority_stays_in_its_term():
    """§9.6: a failed pre-vote leaves the term where it was."""
    core = make(1, term=3, options=PRE_VOTE)
    fire_election_timeout(core)
    core.step(RequestVoteResponse(3, 2, 1, False, True))
    core.step(RequestVoteResponse(3, 3, 1, False, True))
    assert core.role == FOLLOWER and core.current_term == 3


# =========================================================================== §6.2 check-quorum, §4.2.3 lease


def test_leader_without_quorum_steps_down_within_two_election_timeouts():
    """§6.2: "a leader steps down if an election timeout elapses without a successful
    round of heartbeats to a majority of its cluster".  The check runs once per
    election timeout, so an isolated leader steps down within two."""
    core = settled_leader(options=QUORUM)
    names = []
    for _ in range(2 * 4):
        names += trace_names(core.step(Tick()))
    assert core.role == FOLLOWER and "CheckQuorumFailed" in names
    assert core.current_term == 1


def test_leader_hearing_from_majority_stays_leader():
    """§6.2: the leader keeps its office while a majority answers."""
    core = settled_leader(options=QUORUM)
    for _ in range(10 * 4):
        core.step(Tick())
        ack(core, 2, 1)
    assert core.role == LEADER


def test_follower_ignores_vote_request_while_hearing_from_leader():
    """§4.2.3 (and §9.6): a server that heard from a leader within the minimum election
    timeout neither grants a vote nor adopts the candidate's term."""
    core = follower_with_leader(term=1, options=QUORUM)
    effects = core.step(RequestVoteRequest(2, 3, 2, 5, 1))
    assert sent(effects) == [] and core.current_term == 1 and core.voted_for is None
    assert "IgnoreVote" in trace_names(effects)


def test_follower_votes_once_the_leader_lease_expired():
    """§4.2.3: after a full election timeout without the leader, requests count again."""
    core = follower_with_leader(term=1, options=QUORUM)
    for _ in range(4):
        core.step(Tick())
    core.step(RequestVoteRequest(2, 3, 2, 5, 1))
    assert core.current_term == 2 and core.voted_for == 3


# =========================================================================== §3.10 leadership transfer


def test_transfer_to_up_to_date_follower_sends_timeout_now():
    """§3.10: once the target's log matches, "the prior leader sends a TimeoutNow
    request to the target server"."""
    core = settled_leader()
    effects = core.step(TransferLeadership(1, 2))
    assert sent(effects) == [TimeoutNow(1, 1, 2)]
    assert [r.result for r in replies(effects)] == [Accepted(1, 1, 1)]


def test_transfer_waits_for_target_to_catch_up_and_blocks_proposals():
    """§3.10: the leader stops accepting client requests, brings the target up to date,
    and only then sends TimeoutNow."""
    core = settled_leader()
    core.step(Propose(1, (b"x",)))
    effects = core.step(TransferLeadership(2, 3))
    assert sent(effects, TimeoutNow) == []
    (reply,) = replies(core.step(Propose(3, (b"y",))))
    assert type(reply.result) is Rejected
    assert sent(ack(core, 3, 2), TimeoutNow) == [TimeoutNow(1, 1, 3)]


def test_timeout_now_starts_election_at_once_without_pre_vote():
    """§3.10: the target starts an election immediately, skipping pre-vote, and marks
    its RequestVote as part of a transfer."""
    core = follower_with_leader(term=1, options=QUORUM)
    effects = core.step(TimeoutNow(1, 1, 2))
    assert core.role == CANDIDATE and core.current_term == 2 and sent(effects) == []
    requests = sent(persist(core))
    assert len(requests) == 2 and all(m.transfer and not m.pre_vote for m in requests)


def test_transfer_vote_request_is_granted_despite_leader_lease():
    """§3.10 with §4.2.3: the lease protects against disruptive servers, not against a
    transfer that the leader itself started."""
    core = follower_with_leader(term=1, options=QUORUM)
    core.step(RequestVoteRequest(2, 3, 2, 0, 0, transfer=True))
    assert core.current_term == 2 and core.voted_for == 3


def test_transfer_is_abandoned_after_an_election_timeout():
    """§3.10: "If the transfer does not complete after about one election timeout, the
    prior leader aborts the transfer and resumes accepting client requests"."""
    core = settled_leader(options=Options(pre_vote=False, check_quorum=False, election_ticks=4))
    core.step(Propose(1, (b"x",)))
    core.step(TransferLeadership(2, 3))
    names = []
    for _ in range(4):
        names += trace_names(core.step(Tick()))
    assert "TransferAborted" in names
    (reply,) = replies(core.step(Propose(3, (b"y",))))
    assert type(reply.result) is Accepted


def test_transfer_only_by_leader_and_only_to_a_voter():
    """§3.10: a follower cannot transfer leadership, and nobody transfers to a non-voter."""
    follower = follower_with_leader(leader=1)
    assert replies(follower.step(TransferLeadership(1, 3)))[0].result == NotLeader(1)
    leader = settled_leader()
    assert type(replies(leader.step(TransferLeadership(2, 9)))[0].result) is Rejected


# =========================================================================== ch. 4 membership


def config_entry_indexes(core) -> list[int]:
    return [e.index for e in core.log.entries if e.kind == ENTRY_CONFIG]


def test_configuration_takes_effect_when_appended_not_when_committed():
    """§4.1: "a server always uses the latest configuration in its log, regardless of
    whether the entry is committed"; the leader starts replicating to the newcomer."""
    core = settled_leader()
    effects = core.step(ProposeConfig(1, frozenset({1, 2, 3}), frozenset({4})))
    assert core.commit_index == 1 and core.config.learners == {4}
    assert 4 in core.progress and 4 in {m.dest for m in sent(effects)}


def test_follower_reverts_configuration_when_its_entry_is_truncated():
    """§4.1: an uncommitted configuration entry that is overwritten stops counting."""
    core = follower_with_leader(term=1)
    leader = settled_leader()
    leader.step(ProposeConfig(1, frozenset({1, 2}), frozenset()))
    core.step(AppendEntriesRequest(1, 1, 2, 0, 0, tuple(leader.log.entries), 0))
    assert core.config.voters == {1, 2}
    append(core, term=2, leader=3, entries=[(1, 1), (2, 2)])
    assert core.config.voters == {1, 2, 3}


def test_second_change_refused_while_first_is_uncommitted():
    """§4.1: "The leader ... does not begin a new configuration change until the
    previous one has committed"."""
    core = settled_leader()
    core.step(ProposeConfig(1, frozenset({1, 2, 3}), frozenset({4})))
    (reply,) = replies(core.step(ProposeConfig(2, frozenset({1, 2, 3, 4}), frozenset())))
    assert type(reply.result) is Rejected
    assert len(config_entry_indexes(core)) == 1


def test_change_refused_until_leader_commits_entry_of_its_term():
    """§4.1 (the fix to the single-server algorithm): a new leader may not change the
    configuration before an entry of its own term is committed."""
    core = make_leader()
    (reply,) = replies(core.step(ProposeConfig(1, frozenset({1, 2}), frozenset())))
    assert type(reply.result) is Rejected


@pytest.mark.parametrize(
    "voters, learners",
    [({1, 2, 3, 4, 5}, set()), ({1}, set()), ({1, 2, 3}, {3}), (set(), {1})],
    ids=["add-two", "remove-two", "voter-and-learner", "no-voters"],
)
def test_only_single_server_changes_are_accepted(voters, learners):
    """§4.1: adding or removing one voter at a time keeps old and new majorities
    overlapping; other changes are refused with the reason."""
    core = settled_leader()
    (reply,) = replies(core.step(ProposeConfig(1, frozenset(voters), frozenset(learners))))
    assert type(reply.result) is Rejected and reply.result.reason
    assert config_entry_indexes(core) == []


def test_learner_never_campaigns():
    """§4.2.1: a learner (non-voting member) receives the log but never starts an
    election."""
    core = make(4, voters=(1, 2, 3), learners=(4,))
    for _ in range(10 * core.options.election_ticks):
        assert effects_of(core.step(Tick())) == []
    assert core.role == FOLLOWER and core.current_term == 0


def test_removed_leader_does_not_count_itself_in_majorities():
    """§4.2.2: a leader removed from the configuration manages the cluster until the
    entry commits, but it does not count itself in majorities."""
    core = settled_leader(voters=(1, 2, 3))
    core.step(ProposeConfig(1, frozenset({2, 3}), frozenset()))
    ack(core, 2, 2)
    assert core.role == LEADER and core.commit_index == 1


def test_removed_leader_steps_down_once_its_removal_commits():
    """§4.2.2: "the leader steps down ... once the Cnew entry is committed"."""
    core = settled_leader(voters=(1, 2, 3))
    core.step(ProposeConfig(1, frozenset({2, 3}), frozenset()))
    ack(core, 2, 2)
    effects = ack(core, 3, 2)
    assert core.commit_index == 2
    assert core.role == FOLLOWER and "LeaderRemoved" in trace_names(effects)
    for _ in range(10 * core.options.election_ticks):
        core.step(Tick())
    assert core.role == FOLLOWER  # no longer a voter: it never campaigns
