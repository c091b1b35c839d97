"""Marble tests of batch_per_turn: everything of one turn (virtual instant) is one batch."""
from reactivex import operators as ops
from reactivex.testing.marbles import marbles_testing

from abcd.node.batching import batch_per_turn

LISTS = {"a": ["a1", "a2"], "b": ["b1"], "c": ["c1"], "e": []}


def test_items_of_one_instant_become_one_batch():
    with marbles_testing(timespan=1.0) as (start, cold, hot, exp):
        from reactivex import merge

        left = hot("--a---c-|", lookup=LISTS)
        right = hot("--b------", lookup=LISTS)
        results = start(lambda: merge(left, right).pipe(batch_per_turn()))
        batches = [(r.time, r.value.value) for r in results if r.value.kind == "N"]
    assert batches == [(202.0, ["a1", "a2", "b1"]), (206.0, ["c1"])]


def test_empty_lists_emit_nothing_and_completion_follows_the_last_batch():
    with marbles_testing(timespan=1.0) as (start, cold, hot, exp):
        source = hot("--e-a|", lookup=LISTS)
        results = start(lambda: source.pipe(batch_per_turn()))
    kinds = [(r.time, r.value.kind, r.value.value if r.value.kind == "N" else None) for r in results]
    assert kinds == [(204.0, "N", ["a1", "a2"]), (205.0, "C", None)]


def test_each_batch_is_a_fresh_list():
    with marbles_testing(timespan=1.0) as (start, cold, hot, exp):
        source = hot("--a-b-|", lookup=LISTS)
        results = start(lambda: source.pipe(batch_per_turn(), ops.map(len)))
    assert [r.value.value for r in results if r.value.kind == "N"] == [2, 1]
