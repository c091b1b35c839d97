"""The checker can fail: cores that break one rule each are caught within a few seeds."""
from abcd.raft.core import Options
from abcd.sim.runner import SimulationFailure, run_seed

from broken import CommitOldTerms, GrantEveryVote, SkipPersistGate


def first_failing_seed(core_factory, seeds, **kwargs):
    for seed in seeds:
        try:
            run_seed(seed, core_factory=core_factory, **kwargs)
        except SimulationFailure as failure:
            return seed, str(failure)
    return None, None


def test_granting_every_vote_breaks_election_safety():
    seed, message = first_failing_seed(GrantEveryVote, range(1, 51), nodes=3, steps=2000)
    assert seed is not None, "a core that votes for everyone went unnoticed"
    assert "Election Safety" in message
    assert "replay: python -m abcd.sim" in message


def test_skipping_the_persist_gate_is_caught():
    seed, message = first_failing_seed(SkipPersistGate, range(1, 51), nodes=3, steps=2000)
    assert seed is not None, "a core that speaks before its state is durable went unnoticed"
    assert "before" in message and "durable" in message


def test_committing_old_terms_by_counting_is_caught():
    """Figure 8 needs a rare interleaving: a leader whose older-term entry reached a
    majority before its own no-op did, then crashes, and a candidate holding a
    conflicting entry of a later term wins.  One entry per AppendEntries, five nodes
    and frequent faults make it likely enough to find within a bounded search."""
    seed, message = first_failing_seed(
        CommitOldTerms,
        range(1, 401),
        nodes=5,
        steps=2000,
        options=Options(max_entries_per_message=1),
        fault_interval=(50.0, 500.0),
    )
    assert seed is not None, "a core that commits entries of older terms by counting went unnoticed"
    # Depending on the interleaving the damage shows as a committed entry rewritten, two
    # state machines diverging, or a follower vouching for committed entries it lost.
    assert any(word in message for word in ("committed", "State Machine Safety", "acknowledged"))
