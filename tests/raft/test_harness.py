"""The transcript harness itself: parsing, rewriting, error messages, and the safety
checks it applies to every transcript (a harness that cannot fail proves nothing)."""
from __future__ import annotations

import pytest

from abcd.raft.messages import (
    AppendEntriesResponse,
    Entry,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
)

from .harness import SafetyViolation, Scenario, ScenarioError, play

TRANSCRIPT = """\
# A comment survives.

> cluster 3 pre_vote=false
> timeout 1
stale output that will be replaced
> status 2
"""


def test_play_replaces_outputs_and_keeps_comments_and_commands():
    actual = play(TRANSCRIPT)
    lines = actual.splitlines()
    assert lines[:3] == ["# A comment survives.", "", "> cluster 3 pre_vote=false"]
    assert "stale output that will be replaced" not in actual
    assert lines[3:] == [
        "> timeout 1",
        "n1 Timeout term=0",
        "n1 BecomeCandidate term=1",
        "n1 persist seq=1 term=1 vote=1",
        "> status 2",
        "n2 follower term=0 vote=None leader=None commit=0 applied=0 last=0 log=none voters=1,2,3",
    ]
    assert play(actual) == actual  # a rewritten transcript replays exactly


def test_play_is_deterministic():
    text = "> cluster 3\n> timeout 2\n> deliver\n> propose 2 x\n> deliver\n"
    assert play(text) == play(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("> frobnicate\n", "t.txt:1: frobnicate: unknown command 'frobnicate'; known: add, "),
        ("> tick 1\n", "t.txt:1: tick 1: tick: start with `cluster N`"),
        ("> cluster 3\n> tick 9\n", "t.txt:2: tick 9: no node 9 (nodes: 1,2,3)"),
        ("> cluster 3\n> tick one\n", "expected a node id, got 'one'"),
        ("> cluster 3 pre_vote=maybe\n", "cluster: pre_vote must be true or false, got 'maybe'"),
        ("> cluster 3 colour=red\n", "cluster: unknown option 'colour' (allowed: pre_vote, "),
        ("> cluster 0\n", "cluster size must be at least 1, got 0"),
        ("> cluster 3\n> persist 1\n", "persist: n1 has no pending writes"),
        ("> cluster 3\n> crash 1\n> propose 1 x\n", "n1 is down (restart it first)"),
        ("> cluster 3\n> restart 1\n", "restart: n1 is running (crash it first)"),
        ("> cluster 3\n> config 1 learners=4\n", "config: voters=... is required"),
        ("> cluster 3\n> propose 1\n", "propose: expected 2.. arguments, got 1"),
        ("output before a command\n", "t.txt:1: output line before any command"),
        (">cluster 3\n", "t.txt:1: a command line starts with '> '"),
    ],
)
def test_bad_commands_are_reported_with_location_and_reason(text, message):
    with pytest.raises(ScenarioError) as info:
        play(text, "t.txt")
    assert message in str(info.value)


def test_timeout_of_a_learner_is_an_error_not_a_hang():
    sc = Scenario()
    sc.run("cluster 3")
    sc.run("add 4")
    with pytest.raises(ScenarioError, match="n4 did not time out within 20 ticks"):
        sc.run("timeout 4")


def test_cut_drops_messages_sent_across_it_and_heal_restores_the_link():
    sc = Scenario()
    sc.run("cluster 3 pre_vote=false")
    sc.run("cut 1 2")
    out = sc.run("timeout 1") + sc.run("persist 1")
    assert "n1 -> n2 RequestVote(term=1, last=0@0) DROPPED (link cut)" in out
    assert [m.dest for m in sc.in_flight] == [3]
    sc.run("heal")
    out = sc.run("timeout 1") + sc.run("persist 1")
    assert [m.dest for m in sc.in_flight] == [3, 2, 3]


def test_crash_loses_pending_writes_and_restart_uses_durable_state():
    sc = Scenario()
    sc.run("cluster 3 pre_vote=false")
    sc.run("timeout 1")
    assert sc.run("crash 1") == ["n1 crashed, losing unpersisted seq=1"]
    assert sc.run("restart 1") == ["n1 restarted term=0 vote=None log=none"]


# --------------------------------------------------------------------------- safety checks


def scenario() -> Scenario:
    sc = Scenario()
    sc.run("cluster 3 pre_vote=false")
    return sc


def test_check_trips_on_two_leaders_in_one_term():
    sc = scenario()
    sc.check_one_leader_per_term(1, 4)
    sc.check_one_leader_per_term(1, 4)  # the same leader again is fine
    with pytest.raises(SafetyViolation, match="n2 and n1 both became leader in term 4"):
        sc.check_one_leader_per_term(2, 4)


def test_check_trips_on_different_entries_applied_at_one_index():
    sc = scenario()
    sc.check_apply(sc.nodes[1], [Entry(1, 1, b"a")])
    with pytest.raises(SafetyViolation, match="state machine safety: index 1"):
        sc.check_apply(sc.nodes[2], [Entry(2, 1, b"b")])


def test_check_trips_on_applying_out_of_order():
    sc = scenario()
    with pytest.raises(SafetyViolation, match="n1 applied index 2 after 0"):
        sc.check_apply(sc.nodes[1], [Entry(1, 2)])


def test_check_trips_on_a_new_leader_missing_an_entry_applied_in_an_earlier_term():
    sc = scenario()
    sc.run("timeout 2")
    sc.run("timeout 2")  # n2 is a candidate of term 2
    sc.applied[1] = Entry(1, 1, b"a")
    sc.applied_term[1] = 1
    with pytest.raises(SafetyViolation, match="leader completeness: n2"):
        sc.check_leader_completeness(sc.nodes[2])


def test_check_allows_a_leader_of_the_commit_term_or_earlier_to_lack_the_entry():
    """§5.4 speaks of leaders of later terms: a late vote response can still elect a
    leader of an earlier term after an entry was committed, and it is harmless (it
    cannot commit anything: a majority has moved to the later term)."""
    sc = scenario()
    sc.run("timeout 2")  # n2 is a candidate of term 1
    sc.applied[1] = Entry(1, 1, b"a")
    sc.applied_term[1] = 1
    sc.check_leader_completeness(sc.nodes[2])


@pytest.mark.parametrize(
    "message, what",
    [
        (RequestVoteResponse(1, 2, 1, True), "granted its vote to n1 in term 1 before persisting it"),
        (RequestVoteRequest(1, 2, 1, 0, 0), "asked for votes in term 1 before persisting its own"),
        (AppendEntriesResponse(0, 2, 1, True, 1), "acknowledged entries up to 1 with only none durable"),
        (InstallSnapshotResponse(0, 2, 1, 1), "acknowledged entries up to 1 with only none durable"),
    ],
    ids=["vote", "candidate", "append", "snapshot"],
)
def test_check_trips_on_a_promise_sent_before_it_is_durable(message, what):
    sc = scenario()
    node = sc.nodes[2]
    node.core.log.append([Entry(0, 1)])  # in memory only: nothing was persisted
    with pytest.raises(SafetyViolation, match=what):
        sc.check_durable_before_send(node, message)


def test_check_trips_on_a_restored_snapshot_that_is_not_committed_state():
    """A snapshot must end with the entry applied at its index (State Machine Safety)."""
    from abcd.raft.effects import Restore

    sc = scenario()
    sc.applied[3] = Entry(1, 3, b"c")
    with pytest.raises(SafetyViolation, match="restored a snapshot ending at 3@2"):
        sc.check_restore(sc.nodes[2], Restore(Snapshot(3, 2, frozenset({1, 2, 3})), b""))


def test_check_trips_on_a_snapshot_the_shell_cannot_send():
    """The shell's newest snapshot must be at or after the index the core names."""
    sc = scenario()
    with pytest.raises(SafetyViolation, match="asked to send a snapshot at 4"):
        sc.fill_snapshot(sc.nodes[1], InstallSnapshotRequest(1, 1, 2, 4, 1, frozenset({1, 2, 3})))


def test_compact_saves_a_snapshot_and_restart_starts_from_it():
    sc = scenario()
    for command in ("timeout 1", "deliver", "propose 1 a b", "deliver"):
        sc.run(command)
    assert sc.run("compact 1 2") == ["n1 snapshot 3@1 voters=1,2,3 data='a,b', log compacted to 2"]
    sc.run("crash 1")
    assert sc.run("restart 1") == ["n1 restarted term=1 vote=1 snapshot=3@1 voters=1,2,3 log=none"]
    assert sc.nodes[1].machine == ["a", "b"] and sc.nodes[1].applied == 3


@pytest.mark.parametrize(
    "command, message",
    [("compact 1 9", "compact: INDEX must be in 0..0"), ("compact 1", "has applied nothing since its snapshot")],
)
def test_bad_compact_commands_are_reported(command, message):
    with pytest.raises(ScenarioError, match=message):
        scenario().run(command)
