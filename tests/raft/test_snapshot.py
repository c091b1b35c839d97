"""InstallSnapshot and log compaction: Figure 13 of the Raft paper ("InstallSnapshot
RPC") and §7 ("Log compaction"), with the thesis' §5.1 and etcd's snapshot state for
the leader's bookkeeping.

The core names the start of its log in an InstallSnapshotRequest and leaves `data`
empty; the shell fills in its newest snapshot, which may be newer (messages.py).
Each test is named after the rule and cites it.  Multi-server stories are in
testdata/install_snapshot.txt.
"""
from __future__ import annotations

import pytest

from abcd.raft.config import Configuration, encode_config
from abcd.raft.core import Options, RaftCore
from abcd.raft.effects import Apply, Persist, Restore, Send
from abcd.raft.messages import (
    ENTRY_CONFIG,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    PeerUnreachable,
    Persisted,
    Propose,
    ProposeConfig,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    Tick,
)
from abcd.raft.progress import PROBE, REPLICATE, SNAPSHOT
from abcd.raft.roles import CANDIDATE, FOLLOWER, LEADER

from .cores import (
    effects_of,
    PLAIN,
    ack,
    append,
    applied,
    fire_election_timeout,
    follower_with_leader,
    make,
    persist,
    persists,
    sent,
    settled_leader,
    trace_names,
)

VOTERS = frozenset({1, 2, 3})


def snapshot_request(term=2, *, index, last_term, leader=1, dest=2, voters=VOTERS, learners=frozenset(), data=b"s"):
    return InstallSnapshotRequest(term, leader, dest, index, last_term, frozenset(voters), frozenset(learners), data)


def leader_with_compacted_log(*, entries: int = 4, compact_to: int | None = None) -> RaftCore:
    """Leader n1 of term 1 with entries 1..entries+1 committed and applied (n2 has
    them all, n3 only the no-op at 1), its log compacted to `compact_to` (default:
    everything applied)."""
    core = settled_leader()
    core.step(Propose(1, tuple(b"x%d" % i for i in range(entries))))
    persist(core)
    ack(core, 2, core.log.last_index)
    assert core.last_applied == core.log.last_index
    core.compact(core.last_applied if compact_to is None else compact_to)
    return core


def lose_entries_on_3(core: RaftCore) -> list:
    """n3 refuses the entries in flight to it: its log ends at 1 (it lost the rest, say
    in a crash before they were durable), so the leader must start over from 2."""
    return core.step(AppendEntriesResponse(core.current_term, 3, 1, False, rejected_index=core.log.last_index, conflict_index=2, conflict_term=0))


def snapshot_sent_to_3(core: RaftCore) -> InstallSnapshotRequest:
    (request,) = sent(lose_entries_on_3(core), InstallSnapshotRequest)
    return request


# =========================================================================== leader: when and what to send


def test_leader_sends_snapshot_when_follower_needs_compacted_entries():
    """Figure 13 / §7: "the leader must occasionally send snapshots to followers that
    lag behind", namely when "the leader has already discarded the next log entry
    that it needs to send".  The request names the start of the leader's log and the
    configuration there; the shell fills in the data."""
    core = leader_with_compacted_log(entries=4)  # log compacted to 5@1
    effects = lose_entries_on_3(core)
    assert sent(effects, AppendEntriesRequest) == []
    assert sent(effects, InstallSnapshotRequest) == [InstallSnapshotRequest(1, 1, 3, 5, 1, VOTERS, frozenset(), b"")]
    assert "SendInstallSnapshot" in trace_names(effects)
    assert core.progress[3].state == SNAPSHOT


def test_leader_sends_entries_not_snapshot_when_they_are_still_in_its_log():
    """§7: a snapshot is needed only for entries the leader discarded.  Compacting
    behind the snapshot's index keeps a few entries for followers just behind."""
    core = leader_with_compacted_log(entries=4, compact_to=1)  # entries 2..5 kept
    effects = lose_entries_on_3(core)
    assert sent(effects, InstallSnapshotRequest) == []
    (probe,) = sent(effects, AppendEntriesRequest)
    assert (probe.prev_log_index, probe.prev_log_term) == (1, 1)


@pytest.mark.parametrize("compact_to, learners", [(1, set()), (2, {4})], ids=["before-config-entry", "at-config-entry"])
def test_snapshot_carries_configuration_as_of_its_last_included_index(compact_to, learners):
    """§7: the snapshot holds "the latest configuration as of the last included index"
    (Figure 12), not a later one still in the log.  Entry 2 adds learner n4."""
    core = settled_leader()
    core.step(ProposeConfig(1, VOTERS, frozenset({4})))  # 2: config, probes n4 at prev=2
    persist(core)
    ack(core, 2, 2)
    core.step(Propose(2, (b"x",)))  # 3
    persist(core)
    ack(core, 2, 3)
    core.compact(compact_to)
    assert core.base_config == Configuration(VOTERS, frozenset(learners))
    effects = core.step(AppendEntriesResponse(1, 4, 1, False, rejected_index=2, conflict_index=1, conflict_term=0))  # n4's log is empty
    (request,) = sent(effects, InstallSnapshotRequest)
    assert (request.dest, request.last_included_index) == (4, compact_to)
    assert (request.voters, request.learners) == (VOTERS, frozenset(learners))


# =========================================================================== leader: the snapshot state


def test_no_append_entries_to_a_follower_while_its_snapshot_is_outstanding():
    """etcd's snapshot state: while InstallSnapshot is on its way, new entries are not
    sent to that follower (they could not match); heartbeats still go, so that it does
    not start an election."""
    core = leader_with_compacted_log()
    snapshot_sent_to_3(core)
    effects = core.step(Propose(9, (b"y",)))
    assert [m.dest for m in sent(effects, AppendEntriesRequest)] == [2]
    beats = [m for m in sent(core.step(Tick()), AppendEntriesRequest) if m.dest == 3]
    assert beats and all(m.entries == () for m in beats)
    assert sent(core.step(Tick()), InstallSnapshotRequest) == []


def test_refused_heartbeat_does_not_disturb_an_outstanding_snapshot():
    """A heartbeat to a follower behind the snapshot is anchored in what the leader
    compacted and is refused; the snapshot on its way is the answer to that."""
    core = leader_with_compacted_log()
    snapshot_sent_to_3(core)
    effects = core.step(AppendEntriesResponse(1, 3, 1, False, rejected_index=1, conflict_index=2, conflict_term=0))
    assert sent(effects) == []
    assert core.progress[3].state == SNAPSHOT


def test_snapshot_is_resent_after_an_election_timeout_without_answer():
    """Raft tolerates lost messages (§5.3 retries AppendEntries indefinitely): an
    InstallSnapshot that gets no answer within the patience used for AppendEntries
    is presumed lost and sent again, so the follower is never wedged."""
    core = leader_with_compacted_log()
    snapshot_sent_to_3(core)
    patience = core.options.election_ticks
    for _ in range(patience - 1):
        assert sent(core.step(Tick()), InstallSnapshotRequest) == []
    effects = core.step(Tick())
    assert "SnapshotStalled" in trace_names(effects)
    assert [m.dest for m in sent(effects, InstallSnapshotRequest)] == [3]


def test_snapshot_in_flight_over_a_broken_connection_is_sent_again():
    """A broken connection (PeerUnreachable) loses what was in flight to that peer, a
    snapshot too; the next heartbeat's refusal starts it over."""
    core = leader_with_compacted_log()
    snapshot_sent_to_3(core)
    core.step(PeerUnreachable(3))
    assert core.progress[3].state == PROBE
    beat = [m for m in sent(core.step(Tick()), AppendEntriesRequest) if m.dest == 3][0]
    refusal = AppendEntriesResponse(1, 3, 1, False, rejected_index=beat.prev_log_index, conflict_index=2, conflict_term=0)
    assert [m.dest for m in sent(core.step(refusal), InstallSnapshotRequest)] == [3]


def test_a_lost_probe_behind_the_snapshot_is_retried_on_the_next_heartbeat():
    """A follower behind the leader's compacted prefix refuses every heartbeat (they
    are anchored at its match_index, whose term the leader no longer knows).  Such a
    refusal must still resume a probe that was lost, as a heartbeat's success would;
    otherwise the follower is never caught up."""
    core = leader_with_compacted_log(entries=4, compact_to=3)  # log 4..5 kept after 3@1
    core.step(AppendEntriesResponse(1, 3, 1, False, rejected_index=5, conflict_index=5, conflict_term=0))  # n3 has 1..4: probe from 5
    assert (core.progress[3].state, core.progress[3].next_index, core.progress[3].probe_sent) == (PROBE, 5, True)
    # That probe is lost.  The heartbeat, anchored at match_index 1 (compacted), is refused:
    beat = [m for m in sent(core.step(Tick()), AppendEntriesRequest) if m.dest == 3][0]
    assert (beat.prev_log_index, beat.prev_log_term) == (1, 0)
    effects = core.step(AppendEntriesResponse(1, 3, 1, False, rejected_index=1, conflict_index=5, conflict_term=0))
    (probe,) = sent(effects, AppendEntriesRequest)
    assert (probe.dest, probe.prev_log_index) == (3, 4)


# =========================================================================== leader: the answer


def test_snapshot_answer_resumes_replication_after_its_match_index():
    """Figure 13 gives the leader nothing to do on the reply; Figure 2's bookkeeping
    applies: matchIndex is what the follower now holds, nextIndex the one after, and
    replication continues with AppendEntries."""
    core = leader_with_compacted_log(entries=4, compact_to=3)
    core.step(Propose(2, (b"late",)))  # 6@1, after the snapshot
    persist(core)
    snapshot_sent_to_3(core)
    effects = core.step(InstallSnapshotResponse(1, 3, 1, 3))
    pr = core.progress[3]
    assert (pr.state, pr.match_index) == (REPLICATE, 3)
    (streamed,) = sent(effects, AppendEntriesRequest)
    assert (streamed.prev_log_index, streamed.prev_log_term) == (3, 1)
    assert [e.index for e in streamed.entries] == [4, 5, 6]
    assert "SnapshotAccepted" in trace_names(effects)


def test_snapshot_answer_beyond_the_index_asked_for_is_taken():
    """The shell sends its newest snapshot, which may be newer than the start of the
    leader's log that the core named: match_index is whatever the follower reports."""
    core = leader_with_compacted_log(entries=4, compact_to=2)  # shell's snapshot at 5, log after 2
    request = snapshot_sent_to_3(core)
    assert request.last_included_index == 2
    effects = core.step(InstallSnapshotResponse(1, 3, 1, 5))
    assert (core.progress[3].match_index, core.progress[3].next_index) == (5, 6)
    assert sent(effects, AppendEntriesRequest) == []  # nothing left to send


def test_answer_to_an_earlier_snapshot_does_not_cancel_the_latest():
    """A duplicated or late answer to an older InstallSnapshot raises match_index but
    leaves the newer snapshot outstanding (nothing is sent again for it)."""
    core = leader_with_compacted_log(entries=4, compact_to=2)
    core.step(Propose(2, (b"y",)))
    persist(core)
    ack(core, 2, core.log.last_index)
    snapshot_sent_to_3(core)  # names 2
    core.compact(core.last_applied)  # the log now starts after 6
    for _ in range(core.options.election_ticks):
        effects = core.step(Tick())
    (request,) = sent(effects, InstallSnapshotRequest)  # resent, now naming 6
    assert request.last_included_index == 6
    effects = core.step(InstallSnapshotResponse(1, 3, 1, 2))  # the answer to the first
    pr = core.progress[3]
    assert (pr.state, pr.match_index, pr.pending_snapshot) == (SNAPSHOT, 2, 6)
    assert sent(effects) == []


def test_snapshot_answer_from_an_older_term_is_ignored():
    """§5.1: a response from an older term says nothing about the current one."""
    core = leader_with_compacted_log()
    snapshot_sent_to_3(core)
    assert effects_of(core.step(InstallSnapshotResponse(0, 3, 1, 5))) == []
    assert core.progress[3].state == SNAPSHOT and core.progress[3].match_index == 1


def test_snapshot_answer_with_a_higher_term_makes_the_leader_step_down():
    """Figure 2, all servers: a response carrying a higher term converts to follower."""
    core = leader_with_compacted_log()
    snapshot_sent_to_3(core)
    core.step(InstallSnapshotResponse(7, 3, 1, 0))
    assert (core.role, core.current_term) == (FOLLOWER, 7)


# =========================================================================== follower: Figure 13 receiver


def test_snapshot_from_stale_term_is_refused_and_changes_nothing():
    """Figure 13, receiver 1: "Reply immediately if term < currentTerm".  The reply
    carries our term (so that the sender steps down) and promises nothing."""
    core = follower_with_leader(term=3, leader=1, terms=(1, 3))
    effects = core.step(snapshot_request(term=2, leader=4, index=9, last_term=2))
    assert sent(effects) == [InstallSnapshotResponse(3, 2, 4, 0)]
    assert persists(effects) == [] and not [e for e in effects_of(effects) if type(e) is Restore]
    assert (core.log.snapshot_index, core.log.last_index, core.commit_index, core.leader_id) == (0, 2, 0, 1)


def test_snapshot_from_a_newer_term_adopts_the_term_and_the_leader():
    """Figure 2, all servers: a request with a higher term converts to follower of it;
    like AppendEntries, InstallSnapshot names the term's leader."""
    core = follower_with_leader(term=1, leader=1)
    core.step(snapshot_request(term=4, leader=3, index=5, last_term=4))
    assert (core.current_term, core.voted_for, core.leader_id, core.role) == (4, None, 3, FOLLOWER)


def test_candidate_steps_down_on_snapshot_from_leader_of_its_term():
    """§5.2: a candidate that hears from the leader of its term returns to follower."""
    core = make(2)
    fire_election_timeout(core)
    assert core.role == CANDIDATE
    core.step(snapshot_request(term=1, leader=3, index=5, last_term=1))
    assert (core.role, core.leader_id, core.current_term) == (FOLLOWER, 3, 1)


def test_snapshot_from_the_leader_resets_the_election_timer():
    """Figure 2, followers: hearing from the current leader prevents an election; a
    long snapshot transfer must not make the follower campaign."""
    core = follower_with_leader(term=1)
    for _ in range(3 * core.options.election_ticks):
        core.step(Tick())
        core.step(snapshot_request(term=1, index=0, last_term=0))
    assert core.role == FOLLOWER


def test_snapshot_from_the_leader_renews_the_leader_lease():
    """Thesis §4.2.3: a follower that hears from its leader refuses to help depose it;
    InstallSnapshot is hearing from it too."""
    core = follower_with_leader(term=1, options=Options(pre_vote=True, check_quorum=True))
    for _ in range(core.options.election_ticks - 1):
        core.step(Tick())
    core.step(snapshot_request(term=1, index=0, last_term=0))
    effects = core.step(RequestVoteRequest(2, 3, 2, 9, 1, pre_vote=True))
    assert sent(effects) == []  # ignored: leader lease


def test_snapshot_already_covered_by_commit_index_answers_with_commit_index():
    """Figure 13 assumes a follower behind the snapshot; one that already committed as
    far (a duplicate, or a snapshot older than its commit index) keeps everything
    and reports its commit index: its log matches the leader's that far (Leader
    Completeness)."""
    core = follower_with_leader(term=1, terms=(1, 1, 1, 1, 1))
    append(core, term=1, prev=(5, 1), commit=4)
    effects = core.step(snapshot_request(term=1, index=3, last_term=1))
    assert sent(effects) == [InstallSnapshotResponse(1, 2, 1, 4)]
    assert (core.log.snapshot_index, core.log.last_index, core.commit_index) == (0, 5, 4)
    assert persists(effects) == [] and "IgnoreSnapshot" in trace_names(effects)


def test_snapshot_matching_a_log_entry_keeps_the_log_after_it():
    """Figure 13, receiver 6: "If existing log entry has same index and term as
    snapshot's last included entry, retain log entries following it and reply".
    The entries up to it are committed and applied the usual way (no Restore)."""
    core = follower_with_leader(term=1, terms=(1, 1, 1, 1, 1, 1))
    effects = core.step(snapshot_request(term=1, index=4, last_term=1))
    assert (core.log.snapshot_index, core.log.last_index, core.commit_index) == (0, 6, 4)
    assert applied(effects) == [1, 2, 3, 4]
    assert not [e for e in effects_of(effects) if type(e) in (Restore, Persist)]
    assert sent(effects) == [InstallSnapshotResponse(1, 2, 1, 4)]
    assert "RetainLog" in trace_names(effects)


def test_snapshot_not_in_the_log_replaces_the_whole_log_and_the_state_machine():
    """Figure 13, receivers 7-8: "Discard the entire log" and "Reset state machine
    using snapshot contents (and load snapshot's cluster configuration)".  The
    snapshot is made durable (Persist with the snapshot, the log now starting after
    it) and the state machine restored from it, in that order, in the same step."""
    core = follower_with_leader(term=2, terms=(1, 1, 2))  # 3@2 conflicts with the leader's 3@1
    request = snapshot_request(term=2, index=5, last_term=1, voters={1, 2, 3, 4}, learners={5}, data=b"state@5")
    effects = core.step(request)
    snapshot = Snapshot(5, 1, frozenset({1, 2, 3, 4}), frozenset({5}))
    kinds = [type(e) for e in effects_of(effects) if type(e) in (Persist, Restore, Apply, Send)]
    assert kinds == [Persist, Restore]
    (p,) = persists(effects)
    assert (p.hard_state, p.entries, p.snapshot, p.snapshot_data) == (None, (), snapshot, b"state@5")
    assert [e for e in effects_of(effects) if type(e) is Restore] == [Restore(snapshot, b"state@5")]
    assert (core.log.snapshot_index, core.log.snapshot_term, core.log.entries) == (5, 1, [])
    assert (core.commit_index, core.last_applied) == (5, 5)
    assert core.config == Configuration(frozenset({1, 2, 3, 4}), frozenset({5}))
    assert "InstallSnapshot" in trace_names(effects)


def test_installed_snapshot_persists_a_changed_term_in_the_same_write():
    """A snapshot from a leader of a newer term changes the term and replaces the log:
    one Persist carries both (durable before the reply)."""
    core = follower_with_leader(term=1, terms=(1,))
    (p,) = persists(core.step(snapshot_request(term=3, index=4, last_term=2)))
    assert p.hard_state == HardState(3, None) and p.snapshot.last_included_index == 4


def test_installed_snapshot_drops_configuration_entries_from_the_discarded_log():
    """Thesis §4.1: a server uses the latest configuration in its log; once the log is
    discarded, the snapshot's configuration is the latest one."""
    core = follower_with_leader(term=1)
    config_entry = Entry(1, 1, encode_config(Configuration(frozenset({1, 2}))), ENTRY_CONFIG)
    core.step(AppendEntriesRequest(1, 1, 2, 0, 0, (config_entry,), 0))
    assert core.config.voters == {1, 2} and core.config_entries
    core.step(snapshot_request(term=2, index=5, last_term=2, voters={1, 2, 3, 4}))
    assert core.config.voters == {1, 2, 3, 4} and core.config_entries == []
    assert core.base_config.voters == {1, 2, 3, 4}


def test_entries_after_an_installed_snapshot_apply_from_the_next_index():
    """After the snapshot, the log continues at last_included_index + 1 and the state
    machine applies from there (Restore covered everything up to it)."""
    core = follower_with_leader(term=1)
    core.step(snapshot_request(term=1, index=5, last_term=1))
    persist(core)
    effects = append(core, term=1, prev=(5, 1), entries=[(6, 1), (7, 1)], commit=7)
    assert [[e.index for e in p.entries] for p in persists(effects)] == [[6, 7]]
    assert applied(persist(core)) == [6, 7]


def test_snapshot_and_entries_after_it_in_one_batch_are_one_write():
    """step_many: a snapshot and the AppendEntries that follow it in the same batch
    make one Persist (snapshot first, then the entries after it) and one Restore."""
    core = follower_with_leader(term=1)
    batch = [snapshot_request(term=1, index=5, last_term=1), AppendEntriesRequest(1, 1, 2, 5, 1, (Entry(1, 6),), 5)]
    effects = core.step_many(batch)
    (p,) = persists(effects)
    assert p.snapshot.last_included_index == 5 and [e.index for e in p.entries] == [6]
    assert len([e for e in effects_of(effects) if type(e) is Restore]) == 1


def test_entries_discarded_by_a_snapshot_in_the_same_batch_are_not_written():
    """Figure 13, receiver 7 discards the entire log, including entries that arrived
    earlier in the same batch and were not yet handed to storage."""
    core = follower_with_leader(term=1)
    batch = [AppendEntriesRequest(1, 1, 2, 0, 0, (Entry(1, 1), Entry(1, 2)), 0), snapshot_request(term=1, index=5, last_term=1)]
    (p,) = persists(core.step_many(batch))
    assert p.snapshot.last_included_index == 5 and p.entries == ()


# =========================================================================== follower: durability before speech


@pytest.mark.parametrize("case", ["covered", "matching", "install"])
def test_snapshot_answer_waits_until_everything_written_is_durable(case):
    """Thesis §3.8, effects.py "durability before speech": the answer promises the log
    through match_index is durable, so it waits for the Persisted covering every
    write so far (the entries it vouches for, or the snapshot itself)."""
    core = follower_with_leader(term=1)
    # Entries 1..4 arrive with commit 2 and are not yet durable.
    append(core, term=1, entries=[(1, 1), (2, 1), (3, 1), (4, 1)], commit=2)
    index, expected_match = {"covered": (2, 2), "matching": (3, 3), "install": (9, 9)}[case]
    effects = core.step(snapshot_request(term=1, index=index, last_term=1))
    assert sent(effects) == []
    held_until = core.persist_seq
    assert [m for m in sent(core.step(Persisted(held_until - 1))) if type(m) is InstallSnapshotResponse] == []
    assert sent(core.step(Persisted(held_until)), InstallSnapshotResponse) == [
        InstallSnapshotResponse(1, 2, 1, expected_match)
    ]


def test_installed_snapshot_becomes_durable_with_its_own_write():
    """The Persisted of the write holding the snapshot makes it this node's durable
    log end (stable_index): its own copy then counts toward commitment."""
    core = follower_with_leader(term=1)
    core.step(snapshot_request(term=1, index=5, last_term=1))
    assert core.stable_index < 5
    persist(core)
    assert core.stable_index == 5


# =========================================================================== compact (§7)


def test_compact_keeps_the_configuration_as_of_its_index():
    """§7: the snapshot (and so the base the log starts from) holds the configuration
    as of its last included index; later configuration entries stay in the log."""
    core = settled_leader()
    core.step(ProposeConfig(1, frozenset({1, 2})))  # 2: config
    persist(core)
    ack(core, 2, 2)
    core.step(Propose(2, (b"x",)))  # 3
    persist(core)
    ack(core, 2, 3)
    core.compact(1)
    assert core.base_config.voters == VOTERS and [i for i, _ in core.config_entries] == [2]
    core.compact(3)
    assert core.base_config.voters == {1, 2} and core.config_entries == []
    assert core.config.voters == {1, 2}


def test_compact_beyond_what_is_applied_is_refused():
    """§7: a snapshot holds only applied (so committed) state."""
    core = follower_with_leader(term=1, terms=(1, 1, 1))
    with pytest.raises(ValueError, match="only 0 applied"):
        core.compact(2)
    assert core.log.snapshot_index == 0


def test_compact_at_or_behind_the_start_of_the_log_changes_nothing():
    """An index the log already starts after (compacted, or an installed snapshot's)
    is a no-op, not an error: the shell may snapshot behind a newer installed one."""
    core = follower_with_leader(term=1)
    core.step(snapshot_request(term=1, index=5, last_term=1, voters={1, 2, 3, 4}))
    persist(core)
    core.compact(3)
    core.compact(5)
    assert (core.log.snapshot_index, core.log.snapshot_term) == (5, 1)
    assert core.base_config.voters == {1, 2, 3, 4}


def test_compact_behind_last_applied_keeps_the_entries_after_its_index():
    """The shell may compact to an index behind its snapshot, keeping a few entries
    for followers that are only a little behind (they get AppendEntries)."""
    core = leader_with_compacted_log(entries=4, compact_to=2)
    assert (core.log.snapshot_index, core.log.first_index, core.log.last_index) == (2, 3, 5)
    assert [e.index for e in core.log.entries] == [3, 4, 5]


def test_compact_on_a_follower_then_leading_sends_its_snapshot():
    """A follower compacts its own log (§7: "each server takes snapshots
    independently"); elected later, it sends a snapshot to a follower that needs
    the entries it discarded."""
    core = follower_with_leader(1, term=1, leader=2, terms=(1, 1, 1))
    append(core, term=1, leader=2, prev=(3, 1), commit=3)
    core.compact(3)
    fire_election_timeout(core)
    persist(core)
    core.step(RequestVoteResponse(2, 3, 1, True))
    assert core.role == LEADER
    persist(core)
    effects = core.step(AppendEntriesResponse(2, 3, 1, False, rejected_index=3, conflict_index=1, conflict_term=0))  # n3's log is empty
    assert [(m.dest, m.last_included_index) for m in sent(effects, InstallSnapshotRequest)] == [(3, 3)]


def test_restart_from_a_snapshot_starts_after_it():
    """A server restarts from its latest snapshot and the log after it (§7): the
    snapshot's index is committed and applied, its configuration the base."""
    snapshot = Snapshot(5, 2, frozenset({1, 2, 3, 4}))
    core = RaftCore(2, hard_state=HardState(3, 1), snapshot=snapshot, entries=[Entry(3, 6)], options=PLAIN)
    assert (core.commit_index, core.last_applied, core.log.first_index, core.log.last_index) == (5, 5, 6, 6)
    assert core.config.voters == {1, 2, 3, 4}
    effects = append(core, term=3, prev=(6, 3), commit=6)
    assert applied(effects) == [6]
