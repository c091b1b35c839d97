"""PeerUnreachable: a broken connection is a hint that speeds up failover, never a hazard."""
from abcd.raft.core import Options
from abcd.raft.messages import PeerUnreachable, RequestVoteRequest, Tick
from abcd.raft.progress import PROBE, REPLICATE
from abcd.raft.roles import FOLLOWER, LEADER, PRE_CANDIDATE

from raft.cores import effects_of, follower_with_leader, sent, settled_leader, trace_names

WITH_PRE_VOTE = Options(pre_vote=True, check_quorum=True)


def ticks_until_campaign(core, limit: int = 100) -> int:
    for n in range(1, limit + 1):
        core.step(Tick())
        if core.role != FOLLOWER:
            return n
    raise AssertionError("never campaigned")


def test_losing_the_leaders_connection_campaigns_within_half_an_election_timeout():
    core = follower_with_leader(options=WITH_PRE_VOTE)
    effects = core.step(PeerUnreachable(1))
    assert "LeaderUnreachable" in trace_names(effects)
    assert core.leader_id is None
    assert ticks_until_campaign(core) <= core.options.election_ticks // 2
    assert core.role == PRE_CANDIDATE  # still a pre-vote first: a live leader is not deposed


def test_without_the_hint_the_follower_waits_a_whole_election_timeout():
    core = follower_with_leader(options=WITH_PRE_VOTE)
    assert ticks_until_campaign(core) >= core.options.election_ticks


def test_a_heartbeat_after_the_hint_cancels_the_early_campaign():
    from raft.cores import append

    core = follower_with_leader(options=WITH_PRE_VOTE)
    core.step(PeerUnreachable(1))
    append(core, term=1, leader=1)
    assert core.leader_id == 1 and core.election_elapsed == 0


def test_another_peer_unreachable_changes_nothing_for_a_follower():
    core = follower_with_leader(options=WITH_PRE_VOTE)
    before = (core.leader_id, core.election_elapsed)
    assert effects_of(core.step(PeerUnreachable(3))) == []
    assert (core.leader_id, core.election_elapsed) == before


def test_a_follower_still_hearing_its_leader_refuses_the_early_pre_vote():
    """The peer that lost its link asks; one that hears the leader keeps the lease."""
    core = follower_with_leader(options=WITH_PRE_VOTE)
    effects = core.step(RequestVoteRequest(2, 3, core.id, 0, 0, pre_vote=True))
    assert sent(effects) == [] and core.current_term == 1  # ignored: leader lease (§4.2.3)


def test_the_leader_probes_again_a_follower_whose_connection_broke():
    core = settled_leader()
    assert core.progress[2].state == REPLICATE
    core.step(PeerUnreachable(2))
    assert core.progress[2].state == PROBE and core.role == LEADER
