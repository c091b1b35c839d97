"""The checker can fail: cores that break one rule each are caught within a few seeds."""
from abcd.sim.broken import GrantEveryVote, SkipPersistGate
from abcd.sim.runner import SimulationFailure, run_seed


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
    assert message.endswith("--broken GrantEveryVote")  # the replay runs the same core


def test_skipping_the_persist_gate_is_caught():
    seed, message = first_failing_seed(SkipPersistGate, range(1, 51), nodes=3, steps=2000)
    assert seed is not None, "a core that speaks before its state is durable went unnoticed"
    assert "before" in message and "durable" in message


# Committing an older term's entry by counting replicas (CommitOldTerms) needs the rare
# interleaving of Figure 8; test_figure8.py stages it in the simulator and shows the
# checker catching it, and the correct core staying safe.
