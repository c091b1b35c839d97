"""Small hand-written histories whose verdict is known, one per classic situation."""
from __future__ import annotations

import re

import pytest

from abcd.check import CheckResult, check
from history_builders import cas, delete, get, put


def assert_linearizable(history, **kwargs) -> CheckResult:
    result = check(history, **kwargs)
    assert result.ok, result.explanation
    assert not result.inconclusive
    return result


def assert_violation(history, key="x", **kwargs) -> CheckResult:
    result = check(history, **kwargs)
    assert not result.ok, "expected a violation"
    assert not result.inconclusive, result.explanation
    assert result.key == key
    assert f"key {key!r} is not linearizable" in result.explanation
    return result


# ------------------------------------------------------------------ plain reads and writes


def test_empty_history_is_linearizable():
    assert check([]).ok


def test_sequential_write_then_read():
    assert_linearizable([put(1, "x", "1", 0, 1), get(2, "x", "1", 2, 3)])


def test_read_of_absent_key_returns_none():
    assert_linearizable([get(1, "x", None, 0, 1), put(1, "x", "1", 2, 3)])


def test_stale_read_after_completed_write_fails():
    result = assert_violation(
        [put(1, "x", "1", 0, 1), put(1, "x", "2", 2, 3), get(2, "x", "1", 4, 5)]
    )
    # The explanation names the read that could not be placed, with its times, and the
    # write it should have seen.
    assert "client 2 get 'x' -> '1'  [4 .. 5]" in result.explanation
    assert "put 'x' = '2'" in result.explanation
    assert "leaves 'x' holding '2'" in result.explanation
    assert [op.kind for op in result.window] == ["put", "get"]


def test_read_concurrent_with_write_may_see_old_or_new_value():
    for seen in ("1", "2"):
        assert_linearizable(
            [put(1, "x", "1", 0, 1), put(1, "x", "2", 2, 6), get(2, "x", seen, 3, 4)]
        )


def test_touching_intervals_count_as_concurrent():
    # The write completes at 5 and the read starts at 5: with equal timestamps the order
    # is unknown, so the read may still see the old value.
    assert_linearizable([put(1, "x", "1", 0, 1), put(1, "x", "2", 2, 5), get(2, "x", "1", 5, 6)])
    assert_violation([put(1, "x", "1", 0, 1), put(1, "x", "2", 2, 5), get(2, "x", "1", 5.001, 6)])


def test_concurrent_writes_observed_in_impossible_order_fails():
    # Both writes are over by 10; one reader then sees 1 then 2 then 1 again.
    history = [
        put(1, "x", "1", 0, 10),
        put(2, "x", "2", 0, 10),
        get(3, "x", "1", 11, 12),
        get(3, "x", "2", 13, 14),
    ]
    assert_violation(history)


def test_concurrent_writes_observed_in_either_consistent_order():
    for first, second in (("1", "2"), ("2", "1")):
        assert_linearizable(
            [
                put(1, "x", "1", 0, 10),
                put(2, "x", "2", 0, 10),
                get(3, "x", first, 1, 2),
                get(3, "x", second, 11, 12),
            ]
        )


def test_two_readers_disagree_on_order_of_concurrent_writes_fails():
    # Readers overlap each write; reader A sees 1 then 2, reader B sees 2 then 1, and
    # all four reads happen while both writes are in flight: no single order fits both.
    history = [
        put(1, "x", "1", 0, 100),
        put(2, "x", "2", 0, 100),
        get(3, "x", "1", 10, 11),
        get(3, "x", "2", 20, 21),
        get(4, "x", "2", 10, 11),
        get(4, "x", "1", 20, 21),
    ]
    assert_violation(history)


def test_read_of_value_never_written_fails():
    result = assert_violation([put(1, "x", "1", 0, 1), get(2, "x", "zzz", 0.5, 3)])
    assert "get 'x' -> 'zzz'" in result.explanation


def test_read_after_delete_sees_absent():
    assert_linearizable([put(1, "x", "1", 0, 1), delete(1, "x", 2, 3), get(2, "x", None, 4, 5)])
    assert_violation([put(1, "x", "1", 0, 1), delete(1, "x", 2, 3), get(2, "x", "1", 4, 5)])


def test_keys_are_independent_registers():
    history = [
        put(1, "x", "1", 0, 1),
        put(1, "y", "2", 0, 1),
        get(2, "x", "1", 2, 3),
        get(2, "y", "2", 2, 3),
    ]
    assert_linearizable(history)
    assert_violation(history + [get(3, "y", "1", 4, 5)], key="y")


def test_initial_values():
    assert_linearizable([get(1, "x", "seed", 0, 1)], initial={"x": "seed"})
    assert_violation([get(1, "x", None, 0, 1)], initial={"x": "seed"})


# ------------------------------------------------------------------ compare-and-swap


def test_cas_success_and_failure():
    assert_linearizable(
        [
            put(1, "x", "1", 0, 1),
            cas(2, "x", "1", "2", True, 2, 3),
            cas(3, "x", "1", "3", False, 4, 5),
            get(1, "x", "2", 6, 7),
        ]
    )


def test_cas_that_succeeded_on_wrong_value_fails():
    assert_violation([put(1, "x", "1", 0, 1), cas(2, "x", "9", "2", True, 2, 3)])


def test_cas_that_failed_although_value_matched_fails():
    assert_violation([put(1, "x", "1", 0, 1), cas(2, "x", "1", "2", False, 2, 3)])


def test_cas_expected_none_means_absent():
    assert_linearizable([cas(1, "x", None, "1", True, 0, 1), cas(2, "x", None, "2", False, 2, 3)])
    assert_violation([cas(1, "x", None, "1", True, 0, 1), cas(2, "x", None, "2", True, 2, 3)])


def test_two_concurrent_cas_from_same_value_cannot_both_succeed():
    base = [put(1, "x", "0", 0, 1)]
    assert_violation(base + [cas(2, "x", "0", "a", True, 2, 5), cas(3, "x", "0", "b", True, 2, 5)])
    assert_linearizable(
        base + [cas(2, "x", "0", "a", True, 2, 5), cas(3, "x", "0", "b", False, 2, 5)]
    )


# ------------------------------------------------------------------ unknown outcomes


def test_unknown_write_observed_by_later_read_is_ok():
    unknown_write = put(2, "x", "2", 2, None)
    assert_linearizable([put(1, "x", "1", 0, 1), unknown_write, get(3, "x", "2", 10, 11)])


def test_unknown_write_not_observed_by_later_read_is_ok():
    unknown_write = put(2, "x", "2", 2, None)
    assert_linearizable([put(1, "x", "1", 0, 1), unknown_write, get(3, "x", "1", 10, 11)])


def test_unknown_write_may_take_effect_long_after_invoke():
    # Read 1, then 2, then 1 again is impossible... unless the unknown write of 2 was
    # one of two: here the second unknown write of 1 can land after it.
    history = [
        put(1, "x", "1", 0, 1),
        put(2, "x", "2", 2, None),
        get(3, "x", "1", 10, 11),
        get(3, "x", "2", 20, 21),
    ]
    assert_linearizable(history)
    assert_violation(history + [get(3, "x", "1", 30, 31)])
    assert_linearizable(history + [put(4, "x", "1", 3, None), get(3, "x", "1", 30, 31)])


def test_read_of_unknown_write_before_it_was_invoked_fails():
    result = assert_violation(
        [put(1, "x", "1", 0, 1), get(2, "x", "2", 2, 3), put(3, "x", "2", 4, None)]
    )
    assert "get 'x' -> '2'" in result.explanation


def test_unknown_read_is_ignored():
    assert_linearizable([put(1, "x", "1", 0, 1), get(2, "x", None, 2, None)])


def test_unknown_cas_takes_effect_only_if_expected_matched():
    base = [put(1, "x", "1", 0, 1)]
    assert_linearizable(base + [cas(2, "x", "1", "2", None, 2, None), get(3, "x", "2", 5, 6)])
    assert_linearizable(base + [cas(2, "x", "1", "2", None, 2, None), get(3, "x", "1", 5, 6)])
    # Expected "9" never held: the swap cannot have happened.
    assert_violation(base + [cas(2, "x", "9", "2", None, 2, None), get(3, "x", "2", 5, 6)])


def test_unknown_delete():
    base = [put(1, "x", "1", 0, 1), delete(2, "x", 2, None)]
    assert_linearizable(base + [get(3, "x", None, 5, 6)])
    assert_linearizable(base + [get(3, "x", "1", 5, 6)])


# ------------------------------------------------------------------ budget and input


def hard_history(writers: int) -> list:
    """Many concurrent unknown writes and a final read of a value nobody wrote: the
    search must try a large part of the 2^writers subsets before giving up."""
    history = [put(i, "x", str(i), 0, None) for i in range(writers)]
    history += [get(100 + i, "x", str(i), 1, 200) for i in range(writers)]
    return history + [get(999, "x", "nobody", 300, 301)]


def test_budget_exceeded_is_inconclusive_not_a_hang():
    result = check(hard_history(16), budget=1000)
    assert result.inconclusive
    assert not result.ok
    assert result.key == "x"
    assert result.explanation.startswith("inconclusive: search budget exceeded")
    assert result.steps == 1000


def test_budget_counts_over_all_keys_and_a_cheap_violation_is_still_found():
    history = hard_history(16) + [put(1, "y", "1", 0, 1), get(2, "y", "2", 2, 3)]
    result = check(history, budget=1000)
    assert not result.ok and not result.inconclusive
    assert result.key == "y"


def test_generous_budget_decides_the_hard_history():
    result = check(hard_history(8))
    assert not result.ok and not result.inconclusive


@pytest.mark.parametrize("budget", [0, -1, 1.5, True, "10"])
def test_bad_budget_is_rejected(budget):
    with pytest.raises(ValueError, match="budget must be a positive int"):
        check([], budget=budget)


def test_non_operation_in_history_is_rejected():
    with pytest.raises(TypeError, match="history item 1 is not an Operation"):
        check([put(1, "x", "1", 0, 1), ("put", "x")])


def test_bad_initial_is_rejected():
    with pytest.raises(ValueError, match="initial must map str keys to str values"):
        check([], initial={"x": 1})


# ------------------------------------------------------------------ explanation


def test_explanation_window_is_bounded_and_centred_on_the_failure():
    # Forty readers overlap the bad read; only the nearest ones are listed.  The small
    # budget also shows that the concurrent reads are not tried in every order (2^40).
    history = [put(1, "x", "1", 0, 1), put(1, "x", "2", 2, 3)]
    history += [get(10 + i, "x", "2", 4 + i * 0.1, 100) for i in range(40)]
    history += [get(2, "x", "1", 50, 51)]
    result = assert_violation(history, budget=10_000)
    assert 1 < len(result.window) <= 20
    assert get(2, "x", "1", 50, 51) in result.window
    line = r"\[50 \.\. 51\]\s+client 2 get 'x' -> '1'  <- cannot be linearized"
    assert re.search(line, result.explanation)


def test_explanation_shows_unknown_outcome():
    result = assert_violation(
        [put(1, "x", "1", 0, None), get(2, "x", "1", 1, 2), get(2, "x", None, 3, 4)]
    )
    assert "[0 .. ?]" in result.explanation
    assert "(outcome unknown)" in result.explanation


def test_checker_imports_the_standard_library_only():
    import ast
    import pathlib
    import sys

    import abcd.check

    for path in pathlib.Path(abcd.check.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or name.startswith("abcd.check")
                assert allowed or top == "__future__", f"{path.name} imports {name}"
