"""What `GET /v1/status` reads from the core: log runs, the leader's lease, progress."""
from __future__ import annotations

import pytest

from abcd.node.status import lease_remaining_ticks, log_terms, progress
from abcd.raft.core import Options, RaftCore
from abcd.raft.log import RaftLog
from abcd.raft.messages import AppendEntriesResponse, Entry, Persisted, RequestVoteResponse, Tick
from abcd.raft.roles import LEADER, Role


def log_with_terms(*terms: int, snapshot_index: int = 0, snapshot_term: int = 0) -> RaftLog:
    first = snapshot_index + 1
    return RaftLog(snapshot_index, snapshot_term, [Entry(term, first + i) for i, term in enumerate(terms)])


def runs_by_scanning(log: RaftLog) -> list[list[int]]:
    runs: list[list[int]] = []
    for entry in log.entries:
        if not runs or runs[-1][1] != entry.term:
            runs.append([entry.index, entry.term])
    return runs


@pytest.mark.parametrize(
    "terms, snapshot_index, expected",
    [
        ((), 0, []),
        ((), 7, []),  # everything compacted into the snapshot
        ((1,), 0, [[1, 1]]),
        ((1, 1, 2, 2, 2, 5, 5, 7), 0, [[1, 1], [3, 2], [6, 5], [8, 7]]),
        ((2, 2, 5, 5, 7), 3, [[4, 2], [6, 5], [8, 7]]),  # runs start after the snapshot
        ((3, 4, 5, 6), 0, [[1, 3], [2, 4], [3, 5], [4, 6]]),
    ],
)
def test_log_terms_are_the_runs_of_equal_terms(terms, snapshot_index, expected):
    log = log_with_terms(*terms, snapshot_index=snapshot_index, snapshot_term=2 if snapshot_index else 0)
    assert log_terms(log) == expected == runs_by_scanning(log)


def test_log_terms_of_a_long_log_costs_a_binary_search_per_run():
    log = log_with_terms(*([1] * 40_000 + [2] * 50_000 + [4] * 10_000))

    class Counting:
        first_index, last_index = log.first_index, log.last_index
        calls = 0

        def term_at(self, index):
            Counting.calls += 1
            return log.term_at(index)

    assert log_terms(Counting()) == [[1, 1], [40_001, 2], [90_001, 4]]
    assert Counting.calls < 3 * 20, Counting.calls  # ~log2(100,000) = 17 per run, not 100,000


def elected(options: Options) -> RaftCore:
    """Node 1 of three, leader of term 1 through the public step API."""
    core = RaftCore(1, voters=(1, 2, 3), seed=1, options=options)
    for _ in range(2 * options.election_ticks):
        core.step(Tick())
        if core.role != Role.FOLLOWER:
            break
    if options.pre_vote:
        core.step(RequestVoteResponse(core.current_term + 1, 2, 1, True, True))
    core.step(Persisted(core.persist_seq))
    core.step(RequestVoteResponse(core.current_term, 2, 1, True))
    assert core.role == LEADER
    return core


def test_the_lease_of_a_leader_counts_down_to_its_next_check_quorum_and_a_heard_majority_extends_it():
    core = elected(Options(election_ticks=10, check_quorum=True))
    # Just elected, nobody heard yet this round: it holds until the check, 10 ticks away.
    assert lease_remaining_ticks(core) == 10
    core.step(Tick())
    core.step(Tick())
    assert lease_remaining_ticks(core) == 8
    # One follower answered: with the leader that is a majority of three, so the
    # coming check passes and the lease reaches to the check after it.
    core.step(AppendEntriesResponse(core.current_term, 2, 1, True, core.log.last_index))
    assert lease_remaining_ticks(core) == 8 + 10
    for _ in range(8):
        core.step(Tick())
    assert core.role == LEADER  # the check passed; a new round starts unheard
    assert lease_remaining_ticks(core) == 10
    for _ in range(10):
        core.step(Tick())
    assert core.role != LEADER  # heard from nobody for a round: it stepped down as promised
    assert lease_remaining_ticks(core) is None


def test_no_lease_without_check_quorum_nor_on_a_follower():
    assert lease_remaining_ticks(elected(Options(election_ticks=10, check_quorum=False))) is None
    assert lease_remaining_ticks(RaftCore(1, voters=(1, 2, 3), options=Options(check_quorum=True))) is None


def test_progress_is_the_leaders_view_of_each_follower_and_none_on_a_follower():
    core = elected(Options(election_ticks=10, pre_vote=False))
    last = core.log.last_index
    core.step(AppendEntriesResponse(core.current_term, 3, 1, True, last))
    shown = progress(core)
    assert shown["3"] == {"match_index": last, "next_index": last + 1, "state": "replicate"}
    assert shown["2"]["match_index"] == 0 and shown["2"]["state"] == "probe"
    assert list(shown) == ["2", "3"]
    assert progress(RaftCore(2, voters=(1, 2, 3))) is None
