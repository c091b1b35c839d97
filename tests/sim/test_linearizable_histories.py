"""Client histories from simulated runs under faults are linearizable."""
from abcd.check import HistoryRecorder, check
from abcd.sim.runner import run_seed


def record(seed: int, nodes: int):
    recorder = HistoryRecorder(clock=lambda: 0.0)
    run_seed(seed, nodes=nodes, steps=3000, recorder=recorder)
    return recorder.operations()


def test_histories_under_faults_are_linearizable():
    total = 0
    for seed in range(1, 41):
        operations = record(seed, 3 if seed % 2 else 5)
        total += len(operations)
        result = check(operations)
        assert result.ok, f"seed {seed}: {result.explanation}"
    assert total > 2000  # the histories are not trivially small


def test_a_tampered_history_is_caught():
    """The same pipeline fails when one completed read is made to return a stale value."""
    from dataclasses import replace

    operations = list(record(3, 3))
    reads = [i for i, op in enumerate(operations) if op.kind == "get" and op.output is not None and not op.unknown]
    assert reads
    i = reads[-1]
    operations[i] = replace(operations[i], output="never-written")
    assert not check(operations).ok
