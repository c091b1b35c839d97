"""tools/chaos.py: the Jepsen-style runner against real clusters, and its parts.

The runs here are the proof docs/checker.md promises: a real cluster's history, made
under kills, pauses, partitions, latency, loss, leadership transfers and membership
changes, checked for linearizability with no acknowledged write lost; and the same
runner catching a planted bug (reads served from stale local state).
"""
from __future__ import annotations

import json
import random
import sys

import pytest
from tools_helpers import REPO, run_tool

sys.path.insert(0, str(REPO / "tools"))

from chaoslib import schedule  # noqa: E402
from chaoslib.verdict import lost_writes, verdicts  # noqa: E402
from chaoslib.workload import outcome_of  # noqa: E402

from abcd.check import Operation  # noqa: E402
from abcd.client import BadRequest, ClientError, NotFound, Timeout, Unavailable  # noqa: E402

# A seed whose schedule starts with a one-way cut, a kill, a replaced member (refused
# its old identity first) and the leader cut off, then a pause and loss
# (chaoslib.schedule.draw; the order is fixed by the seed).
FIXED_SEED = 2806
SHORT = ["--duration", "20", "--heartbeat-ms", "50", "--election-timeout-ms", "500"]


# --------------------------------------------------------------------------- parts


def test_errors_map_to_outcomes_as_the_client_documents_them():
    assert outcome_of(Timeout("no answer")) == "unknown"
    assert outcome_of(Unavailable("504 then nothing", outcome_unknown=True)) == "unknown"
    assert outcome_of(Unavailable("every node said 503", outcome_unknown=False)) == "fail"
    assert outcome_of(BadRequest(400, "bad_request", "empty key")) == "fail"
    assert outcome_of(NotFound(404, "not_found", "no such lease")) == "fail"
    assert outcome_of(ClientError(409, "conflict", "refused")) == "fail"
    assert outcome_of(ClientError(500, "internal", "crashed mid-way")) == "unknown"
    assert outcome_of(ConnectionResetError()) == "unknown"


def test_the_schedule_is_a_function_of_the_seed():
    a = schedule.draw(7, schedule.KINDS, 0.5, 50)
    assert a == schedule.draw(7, schedule.KINDS, 0.5, 50)
    assert a != schedule.draw(8, schedule.KINDS, 0.5, 50)
    assert {p.kind for p in a} == set(schedule.KINDS)
    # Pauses and partitions outlast an election timeout: a new leader must be elected.
    assert all(p.hold >= 1.0 for p in a if p.kind in ("pause", "partition-leader", "partition-split"))
    assert {p.kind for p in schedule.draw(7, ("kill",), 0.5, 10)} == {"kill"}


def test_fault_kinds_are_validated():
    assert schedule.parse_kinds("all") == schedule.KINDS
    assert schedule.parse_kinds("kill, pause") == ("kill", "pause")
    with pytest.raises(ValueError, match="unknown fault kind 'nap'"):
        schedule.parse_kinds("kill,nap")


def op(client, kind, key, value=None, expected=None, output=None, invoke=0.0, complete=1.0):
    return Operation(client, kind, key, value, expected, output, invoke, complete)


def test_a_forgotten_acknowledged_write_is_lost_and_not_linearizable():
    history = (
        op(1, "put", "k", "a", invoke=0, complete=1),
        op(1, "put", "k", "b", invoke=2, complete=3),
        op("final", "get", "k", output="a", invoke=10, complete=11),
    )
    assert [w.value for w in lost_writes(history, {"k": "a"})] == ["b"]
    [verdict] = verdicts(history)
    assert not verdict.result.ok and verdict.word == "NOT linearizable"


def test_a_write_that_something_may_have_overwritten_is_not_lost():
    history = (
        op(1, "put", "k", "a", invoke=0, complete=1),
        op(2, "delete", "k", invoke=0.5, complete=None),  # unknown: may have come after
        op(3, "cas", "k", "c", expected="zz", output=False, invoke=2, complete=3),  # failed: changed nothing
        op("final", "get", "k", output=None, invoke=10, complete=11),
    )
    assert lost_writes(history, {"k": None}) == []
    assert all(v.result.ok for v in verdicts(history))


# --------------------------------------------------------------------------- real clusters


def chaos(tmp_path, *args, timeout=240):
    """Run the tool as a user would, in tmp_path; (completed process, summary)."""
    return chaos_command(tmp_path, "run", *args, timeout=timeout)


def chaos_command(tmp_path, command, *args, timeout=240):
    summary = tmp_path / "summary.json"
    proc = run_tool("chaos.py", command, *args, "--json", str(summary), cwd=tmp_path, timeout=timeout)
    assert summary.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(summary.read_text())


def assert_proven(proc, summary):
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, output
    assert summary["passed"] and summary["verdict"] == "linearizable", output
    assert summary["lost_writes"] == 0 and summary["final_read_failures"] == 0, output
    # The run did break things and did serve traffic, or the verdict proves nothing.
    applied = [f for f in summary["faults"] if not f["error"]]
    assert len(applied) >= 3, output
    assert summary["operations_total"] >= 1000, output
    assert "VERDICT: LINEARIZABLE, 0 acknowledged writes lost" in proc.stdout


@pytest.mark.integration
@pytest.mark.parametrize("seed", ["fixed", "drawn"])
def test_a_short_chaos_run_is_linearizable_with_no_write_lost(tmp_path, seed):
    number = FIXED_SEED if seed == "fixed" else random.SystemRandom().randrange(1 << 31)
    print(f"chaos seed {number} ({seed})")  # shown with the failure; replay with --seed
    proc, summary = chaos(tmp_path, "--seed", str(number), *SHORT)
    assert summary["seed"] == number
    assert_proven(proc, summary)
    if seed == "fixed":
        assert summary["faults"][0]["kind"] == "partition-oneway" and not summary["faults"][0]["error"]
        assert summary["old_identity_refused"] >= 1, proc.stdout[-3000:]
    assert not list(tmp_path.glob("chaos-history-*.json"))  # written only when a run fails


@pytest.mark.integration
def test_the_checker_catches_reads_served_from_a_stale_leader(tmp_path):
    """The planted bug: members serve reads from local state without ReadIndex.  The
    leader is cut off; once the others elect a new leader and acknowledge writes, the
    reader pinned to the old leader reads what it still holds: a stale value, read after
    a newer one was acknowledged, which no linearization allows."""
    proc, summary = chaos(tmp_path, "--seed", "5", "--duration", "8", "--faults", "partition-leader",
                          "--unsafe-stale-reads", "--heartbeat-ms", "50", "--election-timeout-ms", "500")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert summary["verdict"] == "not linearizable" and not summary["passed"]
    assert "is not linearizable" in proc.stdout and "cannot be linearized" in proc.stdout
    history = json.loads((tmp_path / "chaos-history-5.json").read_text())
    assert history["seed"] == 5 and history["operations"] and history["faults"][0]["kind"] == "partition-leader"


@pytest.mark.slow
@pytest.mark.integration
def test_a_five_member_run_is_linearizable_with_no_write_lost(tmp_path):
    number = random.SystemRandom().randrange(1 << 31)
    print(f"chaos seed {number}")
    proc, summary = chaos(tmp_path, "--seed", str(number), "--nodes", "5", "--duration", "240", "--workers", "8",
                          "--keys", "6", timeout=900)
    assert_proven(proc, summary)
    assert len(summary["faults_by_kind"]) >= 6


@pytest.mark.slow
@pytest.mark.integration
def test_the_planted_stale_reads_are_caught_in_most_seeds(tmp_path):
    """Every fault kind, no pinned readers: only the workers' own reads can show it."""
    seeds = [101, 102, 103, 104, 105, 106]
    caught = []
    for number in seeds:
        run_dir = tmp_path / str(number)
        run_dir.mkdir()
        proc, summary = chaos(run_dir, "--seed", str(number), "--duration", "20", "--readers-per-node", "0",
                              "--unsafe-stale-reads")
        assert summary["verdict"] in ("not linearizable", "linearizable"), proc.stdout[-3000:]
        if summary["verdict"] == "not linearizable":
            caught.append(number)
    print(f"planted stale reads caught in {len(caught)} of {len(seeds)} seeds: {caught}")
    assert len(caught) > len(seeds) // 2


def test_the_planted_bug_flag_is_hidden_from_help():
    from abcd.__main__ import build_parser

    parser = build_parser()
    assert "unsafe" not in parser.format_help()
    assert parser.parse_args(["8080", "--unsafe-stale-reads"]).unsafe_stale_reads is True
    assert parser.parse_args(["8080"]).unsafe_stale_reads is False


def test_the_soak_help_states_the_soak_default_length():
    from chaoslib.options import parse_run, soak_parser

    assert parse_run([], soak=True).duration == 3600.0
    assert "(default 3600)" in soak_parser().format_help()
    assert "(default 60)" not in soak_parser().format_help()


def test_the_soak_reports_growth_from_the_second_quarter_to_the_last():
    from chaoslib.soak import growth

    flat = [(t, 50.0) for t in range(0, 100, 5)]
    leaking = [(t, 50.0 + t) for t in range(0, 100, 5)]
    assert growth(flat) == "+0 %"
    # The run ends at 95 s: the second quarter's samples are 25-45 s (mean 85), the last
    # quarter's 75-95 s (mean 135).
    assert growth(leaking) == f"{100 * (135 - 85) / 85:+.0f} %" == "+59 %"
    assert growth(flat[:5]) == "too few samples"


@pytest.mark.slow
@pytest.mark.integration
def test_a_soak_keeps_every_member_bounded_and_the_history_linearizable(tmp_path):
    """Three minutes of the soak: the verdict as in any run, and every member's samples."""
    proc, summary = chaos_command(tmp_path, "soak", "--minutes", "3", "--sample-every", "5", timeout=900)
    assert_proven(proc, summary)
    resources = summary["resources"]
    assert sorted(resources) == ["n1", "n2", "n3"]
    for member, metrics in resources.items():
        for metric in ("rss_mib", "fds", "tasks", "data_mib"):
            assert len(metrics[metric]) >= 10, (member, metric)
        # Bounded: nothing ends far above what the member held early on (a restart
        # by the nemesis only lowers the figures).
        assert max(v for _, v in metrics["fds"]) < 200, metrics["fds"]
        assert max(v for _, v in metrics["tasks"]) < 500, metrics["tasks"]
        assert max(v for _, v in metrics["rss_mib"]) < 500, metrics["rss_mib"]
