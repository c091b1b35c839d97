"""Configuration helpers: quorums, the commit rule's majority index, encoding, and
the single-server change rule (thesis ch. 4)."""
from __future__ import annotations

import pytest

from abcd.raft.config import (
    Configuration,
    config_context,
    decode_config,
    encode_config,
    single_server_change_error,
)


def config(voters, learners=()) -> Configuration:
    return Configuration(frozenset(voters), frozenset(learners))


@pytest.mark.parametrize("n, quorum", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_quorum_is_a_strict_majority_of_voters(n, quorum):
    assert config(range(1, n + 1), learners={99}).quorum() == quorum


def test_has_quorum_counts_voters_only():
    c = config({1, 2, 3}, learners={4, 5})
    assert not c.has_quorum({1, 4, 5})  # learners never make a majority
    assert c.has_quorum({1, 3})
    assert c.has_quorum([2, 3, 4])


def test_members_are_voters_and_learners():
    assert config({1, 2}, {3}).members == {1, 2, 3}


def test_committed_index_is_highest_index_on_a_majority():
    """Figure 2's commit rule: the N that a majority of matchIndex values reach."""
    c = config({1, 2, 3, 4, 5}, learners={6})
    assert c.committed_index({1: 9, 2: 7, 3: 5, 4: 2, 5: 1, 6: 100}) == 5
    assert c.committed_index({1: 9, 2: 7}) == 0  # missing voters count as 0
    assert config({1, 2, 3, 4}).committed_index({1: 4, 2: 3, 3: 2, 4: 1}) == 2
    assert config(set()).committed_index({1: 5}) == 0


def test_encode_decode_round_trip():
    c = config({3, 1, 2}, {4})
    data = encode_config(c, "n1=10.0.0.1")
    assert decode_config(data) == c
    assert config_context(data) == "n1=10.0.0.1"
    # The same configuration encodes to the same bytes on every server, whatever the set order.
    assert encode_config(config([2, 3, 1], [4])) == encode_config(config([1, 2, 3], [4]))
    assert decode_config(b'{"voters":[1]}') == config({1})


@pytest.mark.parametrize(
    "new",
    [
        config({1, 2, 3, 4}),  # add a voter
        config({1, 2}),  # remove a voter
        config({1, 2, 3}, {4}),  # add a learner
        config({1, 2}, {3}),  # demote a voter to learner
        config({1, 2, 3}),  # no change at all
    ],
    ids=["add-voter", "remove-voter", "add-learner", "demote", "same"],
)
def test_single_server_changes_are_allowed(new):
    assert single_server_change_error(config({1, 2, 3}), new) is None


@pytest.mark.parametrize(
    "new, message",
    [
        (config({1, 2, 3, 4, 5}), "only one voter may be added or removed at a time (2 changed)"),
        (config({1, 4}), "only one voter may be added or removed at a time (3 changed)"),
        (config(set(), {1}), "a configuration needs at least one voter"),
        (config({1, 2, 3}, {3}), "a member cannot be both voter and learner"),
    ],
    ids=["add-two", "swap", "no-voters", "both"],
)
def test_other_changes_are_refused_with_the_reason(new, message):
    assert single_server_change_error(config({1, 2, 3}), new) == message
