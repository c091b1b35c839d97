"""Options.validate: every option that cannot work is refused with a message naming it."""
import pytest

from abcd.raft.core import Options
from abcd.sim.cluster import Cluster


def test_the_defaults_are_valid_and_validate_returns_them():
    options = Options()
    assert options.validate() is options


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"election_ticks": 0}, "election_ticks must be at least 1"),
        ({"heartbeat_ticks": 0}, "heartbeat_ticks must be at least 1"),
        ({"election_ticks": 3, "heartbeat_ticks": 3}, "heartbeat_ticks (3) must be less than election_ticks (3)"),
        ({"max_entries_per_message": 0}, "max_entries_per_message must be at least 1"),
        ({"max_bytes_per_message": -1}, "max_bytes_per_message must be at least 0"),
        ({"max_inflight": 0}, "max_inflight must be at least 1"),
    ],
)
def test_an_option_that_cannot_work_is_named(fields, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Options(**fields).validate()


def test_the_limits_themselves_are_accepted():
    Options(election_ticks=2, heartbeat_ticks=1, max_entries_per_message=1, max_bytes_per_message=0,
            max_inflight=1).validate()


def test_the_simulator_refuses_invalid_options_before_it_runs():
    with pytest.raises(ValueError, match="max_inflight"):
        Cluster(3, seed=1, options=Options(max_inflight=0))


def _ticks_to_first_campaign(options: Options, seed: int) -> int:
    """Ticks a follower of a 3-voter configuration waits, hearing nobody, before it campaigns."""
    from abcd.raft.core import RaftCore
    from abcd.raft.messages import Tick

    core = RaftCore(1, voters={1, 2, 3}, seed=seed, options=options)
    for ticks in range(1, 10 * options.election_ticks):
        record = core.step(Tick())
        if any(t.name in ("BecomePreCandidate", "BecomeCandidate") for t in record.traces):
            return ticks
    raise AssertionError("never campaigned")


@pytest.mark.parametrize("seed", range(20))
def test_an_advanced_first_election_comes_within_one_timeout_and_an_ordinary_one_after_it(seed):
    t = 10
    advanced = _ticks_to_first_campaign(Options(election_ticks=t, advance_first_election=True), seed)
    ordinary = _ticks_to_first_campaign(Options(election_ticks=t), seed)
    assert 1 <= advanced <= t
    assert t <= ordinary < 2 * t
    # The same randomized timeout, election_ticks - 1 ticks sooner: members restarted
    # together still campaign at different ticks.
    assert ordinary - advanced == t - 1
