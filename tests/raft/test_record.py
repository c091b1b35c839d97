"""The step record: one per step, its parts named, unchanged parts shared."""
import pytest

from abcd.raft.messages import Persisted, Propose, SnapshotTaken, Tick
from abcd.raft.record import EMPTY
from abcd.raft.roles import FOLLOWER, LEADER

from .cores import ack, make, persist, settled_leader


def test_a_quiet_step_shares_its_empty_parts_and_the_previous_soft_and_config():
    core = settled_leader()
    before = core.step(Tick())
    record = core.step(Persisted(core.persist_seq))  # nothing new to acknowledge
    assert record.messages is EMPTY and record.replies is EMPTY and record.traces is EMPTY
    assert record.persist is None and record.restore is None and record.committed is EMPTY
    assert record.soft is before.soft and record.config is before.config


def test_the_soft_part_tells_who_leads_and_what_is_committed():
    core = make(1, voters=(1,))
    assert core.soft_state.role == FOLLOWER and core.soft_state.leader_id is None
    for _ in range(2 * core.options.election_ticks):
        record = core.step(Tick())
        if record.soft.role == LEADER:
            break
    assert (record.soft.role, record.soft.leader_id, record.soft.term) == (LEADER, 1, 1)
    record = persist(core)  # the no-op is durable: a one-voter cluster commits it
    assert record.soft.commit_index == 1 and [e.index for e in record.committed] == [1]


def test_a_proposal_is_one_record_with_messages_persist_and_reply():
    core = settled_leader()
    record = core.step(Propose(7, (b"x",)))
    assert [m.dest for m in record.messages] == [2, 3]
    assert [e.data for e in record.persist.entries] == [b"x"]
    assert [r.tag for r in record.replies] == [7]
    persist(core)
    record = ack(core, 2, core.log.last_index)
    assert [e.data for e in record.committed] == [b"x"] and record.soft.commit_index == core.log.last_index


def test_snapshot_taken_compacts_the_log_and_the_config_part_says_so():
    core = settled_leader()
    for tag in range(3):
        core.step(Propose(tag, (b"v",)))
    persist(core)
    ack(core, 2, core.log.last_index)
    before = core.config_state
    record = core.step(SnapshotTaken(core.last_applied, 3))
    assert core.log.snapshot_index == 3
    assert record.config is not before and record.config.config == before.config
    with pytest.raises(ValueError, match="beyond what was applied"):
        core.step(SnapshotTaken(core.last_applied + 1, 3))
    with pytest.raises(ValueError, match="cannot compact to"):
        core.step(SnapshotTaken(3, 4))


def test_effects_lists_the_traces_then_the_parts_in_the_shells_order():
    core = settled_leader()
    record = core.step(Propose(9, (b"y",)))
    kinds = [type(e).__name__ for e in record.effects()]
    assert kinds == ["Send", "Send", "Persist", "Reply"]
