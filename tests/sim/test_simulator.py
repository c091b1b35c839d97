"""The simulator over many seeds: Raft's safety properties hold under every fault.

The cluster checks Election Safety, Log Matching, Leader Completeness, State Machine
Safety and durability-before-speech after every event; reads check their read index
against every write acknowledged before them; after the faults heal, a leader must
commit a new write and every accepted write must be resolved.
"""
from collections import Counter

import pytest

from abcd.raft.core import Options
from abcd.sim.runner import ALL_FAULTS, SimulationFailure, replay_command, run_seed

SEEDS = 2000
CHUNK = 100
STEPS = 2000


@pytest.mark.parametrize("first", range(1, SEEDS + 1, CHUNK))
def test_seeds_with_all_faults_keep_every_invariant(first):
    """2,000 seeds (3 and 5 nodes alternately), each at least 2,000 events with faults.

    Most seeds snapshot and compact (every 3 to 40 applied entries, the seed decides);
    in every chunk some followers really get and install a leader's snapshot."""
    snapshots = Counter()
    for seed in range(first, first + CHUNK):
        nodes = 3 if seed % 2 else 5
        result = run_seed(seed, nodes=nodes, steps=STEPS, faults=ALL_FAULTS)
        assert result.events >= STEPS
        assert result.leaders_elected >= 1
        snapshots.update(result.snapshot_stats)
    assert snapshots["snapshots_delivered"] > 0 and snapshots["snapshots_installed"] > 0, snapshots


def test_runs_make_progress_under_faults():
    """The workload really runs: writes are acknowledged and reads served despite faults."""
    totals = [run_seed(seed, nodes=3, steps=STEPS) for seed in range(1, 21)]
    assert sum(r.acked_writes for r in totals) > 500
    assert sum(r.completed_reads for r in totals) > 300
    assert sum(r.leaders_elected for r in totals) > 20  # faults forced re-elections


def test_five_nodes_elect_a_stable_leader_in_the_first_term():
    """Without faults, pre-vote and randomized timeouts give one leader in term 1 (>= 95 %)."""
    seeds = range(1, 201)
    stable = 0
    for seed in seeds:
        result = run_seed(seed, nodes=5, steps=3000, faults=(), check_liveness=False)
        if result.first_leader_term == 1 and result.leaders_elected == 1:
            stable += 1
    assert stable >= 0.95 * len(seeds)


def test_same_seed_same_run():
    a = run_seed(1234, nodes=5, steps=STEPS)
    b = run_seed(1234, nodes=5, steps=STEPS)
    assert (a.events, a.virtual_ms, a.leaders_elected, a.acked_writes, a.completed_reads) == (
        b.events,
        b.virtual_ms,
        b.leaders_elected,
        b.acked_writes,
        b.completed_reads,
    )


def test_failure_prints_a_replay_command():
    command = replay_command(42, 5, 20000, ("drop", "crash"))
    assert command == "python -m abcd.sim --nodes 5 --seed 42 --steps 20000 --faults drop,crash --trace"
    failure = SimulationFailure(42, 5, 20000, ("drop", "crash"), "boom")
    assert command in str(failure)
    assert replay_command(42, 5, 20000, (), snapshots=False).endswith("--faults none --trace --snapshot-every 0")
    assert SimulationFailure(42, 5, 20000, (), "boom", snapshots=7).replay.endswith("--snapshot-every 7")


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 100 million simulated events: about 20 minutes on one core
def test_twenty_thousand_seeds():
    for seed in range(100_000, 120_000):
        run_seed(seed, nodes=3 + 2 * (seed % 2), steps=5000)


@pytest.mark.slow
def test_small_messages_and_windows():
    """Tiny AppendEntries and windows exercise flow control and backtracking harder."""
    options = Options(max_entries_per_message=2, max_inflight=2)
    for seed in range(1, 1001):
        run_seed(seed, nodes=5, steps=STEPS, options=options)
