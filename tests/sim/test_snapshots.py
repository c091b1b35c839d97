"""Snapshots and log compaction in the simulator (§7, Figure 13).

Nodes snapshot their state machines every few applied entries and compact their logs,
sometimes keeping a few entries before the snapshot; leaders send snapshots to
followers that need compacted entries; crashed nodes restart from their snapshot and
the log after it.  Every invariant of test_simulator.py is checked with compacted
logs, plus: a snapshot ends with the committed entry at its index, two snapshots at
one index hold the same state, a restored state is one some node saved, and after
the faults heal every node holds the same state machine.
"""
from collections import Counter

import pytest

from abcd.check import HistoryRecorder, check
from abcd.sim.broken import AcksSnapshotBeforeDurable, ForgetsRestore, InstallsOverItsCommittedLog, NeverSendsSnapshot
from abcd.sim.runner import SimulationFailure, run_seed

STEPS = 2000


def frequent(seed: int) -> int:
    """Snapshot every 3 to 6 applied entries: followers fall behind a snapshot often."""
    return 3 + seed % 4


def test_frequent_snapshots_keep_every_invariant_and_are_installed():
    """100 seeds (3 and 5 nodes) with snapshots every 3 to 6 entries; the InstallSnapshot
    path is really taken: snapshots are sent, delivered and installed (Restore)."""
    totals = Counter()
    for seed in range(1, 101):
        result = run_seed(seed, nodes=3 if seed % 2 else 5, steps=STEPS, snapshots=frequent(seed))
        totals.update(result.snapshot_stats)
    assert totals["snapshots_taken"] > 1000
    assert totals["snapshots_sent"] > 100
    assert totals["snapshots_delivered"] > 100
    assert totals["snapshots_installed"] > 50


def test_histories_with_frequent_snapshots_are_linearizable():
    """Reads served from a state machine restored from a snapshot are linearizable too."""
    installed = 0
    for seed in range(1, 21):
        recorder = HistoryRecorder(clock=lambda: 0.0)
        result = run_seed(seed, nodes=3, steps=3000, recorder=recorder, snapshots=frequent(seed))
        installed += result.snapshot_stats["snapshots_installed"]
        outcome = check(recorder.operations())
        assert outcome.ok, f"seed {seed}: {outcome.explanation}"
    assert installed > 10


def test_without_snapshots_nothing_is_compacted_or_sent():
    result = run_seed(5, nodes=3, steps=STEPS, snapshots=False)
    assert result.snapshot_every is None
    assert sum(result.snapshot_stats.values()) == 0


def first_failing_seed(core_factory, seeds=range(1, 31)):
    for seed in seeds:
        try:
            run_seed(seed, core_factory=core_factory, nodes=3, steps=STEPS, snapshots=3)
        except SimulationFailure as failure:
            return seed, str(failure)
    return None, None


@pytest.mark.parametrize(
    "core_factory, symptom",
    [
        (NeverSendsSnapshot, "no leader committed a write"),
        (AcksSnapshotBeforeDurable, "before they were durable"),
        (ForgetsRestore, "applied index"),
        (InstallsOverItsCommittedLog, "restored a snapshot"),
    ],
    ids=["never-sends-snapshot", "acks-before-durable", "forgets-restore", "installs-over-committed-log"],
)
def test_a_core_breaking_a_snapshot_rule_is_caught(core_factory, symptom):
    """The checks can fail: a core that breaks one rule of InstallSnapshot is caught
    within a few seeds, with a replay command that includes the snapshot setting."""
    seed, message = first_failing_seed(core_factory)
    assert seed is not None, f"{core_factory.__name__} went unnoticed"
    assert symptom in message
    assert "--snapshot-every 3" in message


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 10 minutes on one core
def test_frequent_snapshots_over_thousands_of_seeds():
    for seed in range(200_000, 205_000):
        run_seed(seed, nodes=3 + 2 * (seed % 2), steps=5000, snapshots=frequent(seed))
