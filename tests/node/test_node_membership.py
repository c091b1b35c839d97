"""The member table in config entries, planning changes, promoting caught-up learners."""
import dataclasses

import pytest

from abcd.node.membership import ChangeError, MemberInfo, Membership, decode_context, encode_context
from abcd.raft.config import Configuration, encode_config
from abcd.raft.core import RaftCore
from abcd.node.core_view import CoreView
from abcd.raft.messages import ENTRY_CONFIG, AppendEntriesResponse, Entry, HardState, Persisted, SnapshotTaken, Tick


def seeded_leader():
    """A one-voter cluster, bootstrapped as the node does, driven to leadership."""
    context = encode_context({1: MemberInfo("n1", "127.0.0.1:8080")}, next_id=2)
    seed = Entry(1, 1, encode_config(Configuration(frozenset({1})), context), ENTRY_CONFIG)
    core = RaftCore(1, hard_state=HardState(1, None), entries=[seed], seed=3)
    for _ in range(100):
        record = core.step(Tick())
        if record.persist is not None:
            core.step(Persisted(record.persist.seq))
        if core.is_leader() and core.commit_index == core.log.last_index:
            return core
    raise AssertionError("the single voter did not become leader")


def persist_all(core, record):
    if record.persist is not None:
        persist_all(core, core.step(Persisted(record.persist.seq)))


def view(core) -> CoreView:
    """The node's view of `core` as of its last step record."""
    return CoreView(core)


def test_context_round_trip():
    members = {1: MemberInfo("a", "h:1"), 3: MemberInfo("c", "h:3", promote=True)}
    assert decode_context(encode_context(members, 7)) == (members, 7)


def test_context_that_is_not_ours_is_refused():
    with pytest.raises(ValueError, match="member table"):
        decode_context('{"something": 1}')


def test_the_table_follows_the_latest_config_entry_in_the_log():
    core = seeded_leader()
    membership = Membership(1)
    assert membership.sync(core.config_state) is True
    assert membership.members == {1: MemberInfo("n1", "127.0.0.1:8080")}
    assert membership.sync(core.config_state) is False  # nothing changed
    node_id, change = membership.plan_add(view(core), "127.0.0.1:8081", "n2", learner=True)
    assert node_id == 2
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    assert membership.sync(core.config_state) is True
    assert membership.peers() == {2: "127.0.0.1:8081"}
    assert core.config.learners == {2}
    assert membership.describe(view(core))[1] == {
        "id": 2, "name": "n2", "address": "127.0.0.1:8081", "voter": False, "leader": False
    }


def test_ids_are_never_reused_after_a_removal():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    _, change = membership.plan_add(view(core), "h:2", None, learner=True)
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    membership.sync(core.config_state)
    persist_all(core, core.step(dataclasses.replace(membership.plan_remove(view(core), 2), tag=2)))
    membership.sync(core.config_state)
    assert 2 not in membership.members
    # The removal is not committed (node 2 never answered), but the table already shows it.
    assert membership.next_id == 3


def test_removing_the_last_voter_or_a_stranger_is_refused():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    with pytest.raises(ChangeError, match="last voter"):
        membership.plan_remove(view(core), 1)
    with pytest.raises(ChangeError) as error:
        membership.plan_remove(view(core), 9)
    assert error.value.status == 404


def test_a_learner_is_promoted_only_once_caught_up_with_the_commit_index():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    _, change = membership.plan_add(view(core), "h:2", "n2", learner=True)
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    membership.sync(core.config_state)
    assert membership.learner_to_promote(view(core)) is None  # match index 0
    assert membership.learner_to_promote(view(core), caught_up_index=1) is None
    # No commit index seen yet (0) must not make a silent learner look caught up.
    assert membership.learner_to_promote(view(core), caught_up_index=0) is None
    last = core.log.last_index
    persist_all(core, core.step(AppendEntriesResponse(core.current_term, 2, 1, True, last)))
    assert core.commit_index == last
    assert membership.learner_to_promote(view(core)) == 2
    # Trailing the commit index, but past where it stood a tick ago: caught up too.
    assert membership.learner_to_promote(view(core), caught_up_index=last - 1) == 2
    assert membership.learner_to_promote(view(core), caught_up_index=last + 5) == 2  # never beyond the commit index
    promote = membership.plan_promote(view(core), 2)
    assert promote.voters == {1, 2} and promote.learners == frozenset()
    assert decode_context(promote.context)[0][2].promote is False


def test_promoting_a_learner_that_has_not_caught_up_is_refused_naming_how_far_behind():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    _, change = membership.plan_add(view(core), "h:2", "n2", learner=True)
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    membership.sync(core.config_state)
    last = core.log.last_index
    with pytest.raises(ChangeError) as error:  # never answered: match index 0
        membership.plan_promote(view(core), 2, caught_up_index=last)
    assert (error.value.status, error.value.code) == (409, "learner_not_ready")
    assert f"up to index 0, {last} entries short of index {last}" in str(error.value)
    assert "never answered" in str(error.value)
    persist_all(core, core.step(AppendEntriesResponse(core.current_term, 2, 1, True, last - 1)))
    with pytest.raises(ChangeError, match=f"up to index {last - 1}, 1 entry short"):
        membership.plan_promote(view(core), 2)
    # Trailing the commit index, but past where it stood a tick ago: ready.
    assert membership.plan_promote(view(core), 2, caught_up_index=last - 1).voters == {1, 2}


def test_a_member_being_removed_stays_a_peer_until_its_removal_commits_then_counts_as_removed():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    _, change = membership.plan_add(view(core), "h:2", "n2", learner=True)
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    persist_all(core, core.step(AppendEntriesResponse(core.current_term, 2, 1, True, core.log.last_index)))
    membership.sync(core.config_state)
    assert not membership.is_removed(2) and not membership.is_removed(3)  # 3: not added yet
    effects = core.step(dataclasses.replace(membership.plan_remove(view(core), 2), tag=2))
    assert membership.sync(core.config_state) is True
    assert 2 not in membership.members  # the latest configuration...
    assert membership.peers() == {2: "h:2"}  # ...but node 2 is still reached until the removal commits
    assert not membership.is_removed(2)
    # Once durable, the leader alone is the new configuration's majority: the removal commits.
    persist_all(core, effects)
    assert core.commit_index == core.log.last_index
    assert membership.sync(core.config_state) is True
    assert membership.peers() == {} and membership.is_removed(2)
    assert not membership.is_removed(1) and not membership.is_removed(3)


def test_a_member_added_as_voter_is_not_marked_for_promotion():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    _, change = membership.plan_add(view(core), "h:2", "n2", learner=False)
    assert change.voters == {1, 2}
    assert decode_context(change.context)[0][2].promote is False


def test_seed_members_serve_until_the_log_has_a_configuration():
    core = RaftCore(5, seed=1)  # just joined: empty log
    seed = {1: MemberInfo("n1", "h:1"), 5: MemberInfo("me", "h:5")}
    membership = Membership(5, seed)
    membership.sync(core.config_state)
    assert membership.peers() == {1: "h:1"}


# --------------------------------------------------------------------------- snapshots


def test_a_snapshot_base_stands_in_once_the_config_entries_are_compacted_away():
    core = seeded_leader()
    seed_members = {7: MemberInfo("seed", "h:7")}
    membership = Membership(1, seed_members)
    membership.sync(core.config_state)
    entry_context = membership.context_at(core.log.last_index)
    assert membership.members == {1: MemberInfo("n1", "127.0.0.1:8080")}
    membership.set_base(entry_context)
    core.step(SnapshotTaken(core.last_applied, core.last_applied))
    assert core.config_entries == []
    membership.sync(core.config_state)
    assert membership.members == {1: MemberInfo("n1", "127.0.0.1:8080")}  # not the seed
    assert membership.context_at(core.log.last_index) == entry_context


def test_context_at_picks_the_configuration_in_force_at_an_index():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    before = membership.context_at(core.log.last_index)
    _, change = membership.plan_add(view(core), "h:2", "n2", learner=True)
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    membership.sync(core.config_state)  # context_at reads the configuration last synced
    added_at = core.config_entries[-1][0]
    assert membership.context_at(added_at - 1) == before
    assert decode_context(membership.context_at(added_at))[0][2] == MemberInfo("n2", "h:2", promote=True)


def test_a_config_entry_replaced_at_the_same_index_is_noticed():
    # A follower overwrites a conflicting suffix (§5.3) whose config entry sat at the
    # same index as the leader's: same index, another term, another member table.
    ours = encode_config(Configuration(frozenset({1, 2})), encode_context({1: MemberInfo("a", "h:1")}, 3))
    theirs = encode_config(Configuration(frozenset({1, 3})), encode_context({3: MemberInfo("c", "h:3")}, 4))
    core = RaftCore(1, hard_state=HardState(2, None), entries=[Entry(1, 1, b""), Entry(2, 2, ours, ENTRY_CONFIG)])
    membership = Membership(1)
    membership.sync(core.config_state)
    assert membership.peers() == {}
    core.log.append([Entry(3, 2, theirs, ENTRY_CONFIG)])
    core.rebuild_config()
    core.step_many([])  # a step's record carries the new configuration
    assert membership.sync(core.config_state) is True
    assert membership.peers() == {3: "h:3"}


def test_a_base_that_is_not_a_member_table_is_refused():
    membership = Membership(1)
    with pytest.raises(ValueError, match="not a member table"):
        membership.set_base('{"members": [1]}')
    membership.set_base(None)  # a snapshot without a table: the base stays as it was
    assert membership.base_context is None


# --------------------------------------------------------------------------- peers the table does not name


def test_a_peer_the_table_does_not_name_is_answered_at_its_advertised_address_until_it_disconnects():
    # A new member installed a snapshot whose table predates the leader: node 4 replaced
    # node 3 at the same address; the table names 3 there, and not 4.
    core = RaftCore(5, seed=1)
    stale = encode_context({1: MemberInfo("n1", "h:1"), 3: MemberInfo("n3", "h:3")}, next_id=4)
    membership = Membership(5, {4: MemberInfo("n4", "h:3"), 5: MemberInfo("me", "h:5")})
    membership.sync(core.config_state)
    # The join answer named node 4: heard, but no new peer.
    assert membership.heard(4, "h:3") is False
    assert membership.peers() == {4: "h:3"}
    membership.set_base(stale)  # the snapshot installed
    assert membership.sync(core.config_state) is True
    assert membership.peers() == {1: "h:1", 3: "h:3", 4: "h:3"}  # still answers node 4
    assert membership.address_of(4) == "h:3"
    assert membership.heard(4, "h:3") is False  # nothing new
    assert membership.heard(5, "h:5") is False  # never itself
    assert membership.forget(4) is True
    assert membership.peers() == {1: "h:1", 3: "h:3"}
    assert membership.address_of(4) is None
    assert membership.forget(4) is False


def test_the_table_wins_over_an_advertised_address_and_a_removed_member_is_never_answered():
    core = seeded_leader()
    membership = Membership(1)
    membership.sync(core.config_state)
    assert membership.heard(2, "h:elsewhere") is True
    assert membership.peers() == {2: "h:elsewhere"}
    _, change = membership.plan_add(core, "h:2", "n2", learner=True)
    persist_all(core, core.step(dataclasses.replace(change, tag=1)))
    persist_all(core, core.step(AppendEntriesResponse(core.current_term, 2, 1, True, core.log.last_index)))
    membership.sync(core.config_state)
    assert membership.peers() == {2: "h:2"}  # the table names it now
    assert membership.forget(2) is False  # its disconnection leaves the table's peer
    assert membership.heard(2, "h:elsewhere") is False
    persist_all(core, core.step(dataclasses.replace(membership.plan_remove(core, 2), tag=2)))
    membership.sync(core.config_state)
    assert membership.is_removed(2)
    assert membership.peers() == {} and membership.address_of(2) is None
