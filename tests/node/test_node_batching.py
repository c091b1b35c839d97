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


# --------------------------------------------------------------- on an asyncio loop


class Unused:
    """A scheduler that must not be asked: given call_soon, the flush goes through it."""

    def schedule(self, action, state=None):
        raise AssertionError("the flush went through the scheduler, not call_soon")


def run_turns(pushes, dispose_after_first=False):
    """Push each list of `pushes[turn]` in that loop turn; the batches seen, per turn."""
    import asyncio

    from reactivex.subject import Subject

    async def main():
        loop = asyncio.get_running_loop()
        source = Subject()
        seen = []
        turn = 0
        subscription = source.pipe(batch_per_turn(Unused(), call_soon=loop.call_soon)).subscribe(
            lambda batch: seen.append((turn, batch))
        )
        for turn, lists in enumerate(pushes):
            for items in lists:
                source.on_next(items)
            if dispose_after_first:
                subscription.dispose()
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        return seen

    return asyncio.run(main())


def test_with_call_soon_one_turn_is_one_batch_in_the_next_turn():
    # Each turn's lists arrive as one batch once that turn's pushes are done, before
    # the next turn's: nothing of turn 1 joins turn 0's batch.
    seen = run_turns([[["a1"], ["a2", "a3"]], [["b1"]], []])
    assert seen == [(0, ["a1", "a2", "a3"]), (1, ["b1"])]


def test_with_call_soon_a_disposed_subscription_gets_no_pending_batch():
    assert run_turns([[["a1"]], [["b1"]]], dispose_after_first=True) == []
