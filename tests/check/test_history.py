"""Operation validation and the HistoryRecorder."""
from __future__ import annotations

import pytest

from abcd.check import HistoryRecorder, Operation, check


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_recorder_ok_unknown_fail():
    clock = FakeClock()
    recorder = HistoryRecorder(clock)
    a = recorder.invoke(1, "put", "x", "1")
    clock.now = 1.0
    recorder.ok(a)
    b = recorder.invoke(2, "put", "x", "2")
    c = recorder.invoke(3, "get", "x")
    clock.now = 2.0
    recorder.unknown(b)
    recorder.ok(c, "1")
    d = recorder.invoke(4, "cas", "x", "3", expected="1")
    recorder.fail(d)
    ops = recorder.operations()
    assert ops == (
        Operation(1, "put", "x", "1", None, None, 0.0, 1.0),
        Operation(2, "put", "x", "2", None, None, 1.0, None),
        Operation(3, "get", "x", None, None, "1", 1.0, 2.0),
    )
    assert recorder.pending == 0
    assert check(ops).ok


def test_recorder_explicit_times_and_pending_is_unknown():
    recorder = HistoryRecorder(clock=lambda: pytest.fail("clock must not be read"))
    h = recorder.invoke("c1", "delete", "x", at=5)
    assert recorder.pending == 1
    assert recorder.operations() == (Operation("c1", "delete", "x", None, None, None, 5, None),)
    recorder.ok(h, at=6)
    assert recorder.operations()[0].complete == 6


def test_recorder_rejects_double_resolution_and_unknown_handles():
    recorder = HistoryRecorder(FakeClock())
    h = recorder.invoke(1, "get", "x")
    recorder.ok(h, None)
    with pytest.raises(ValueError, match="operation 0 was already resolved"):
        recorder.unknown(h)
    with pytest.raises(ValueError, match="no operation with handle 7"):
        recorder.ok(7)


def test_recorder_validates_at_invoke_and_at_ok():
    recorder = HistoryRecorder(FakeClock())
    with pytest.raises(ValueError, match="kind must be one of"):
        recorder.invoke(1, "range", "x")
    h = recorder.invoke(1, "cas", "x", "2", expected="1")
    with pytest.raises(ValueError, match="cas 'x': output must be True or False"):
        recorder.ok(h, "yes")
    # The failed call left the operation pending, not half-recorded.
    assert recorder.pending == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(kind="scan"), "kind must be one of"),
        (dict(key=3), "key must be a str"),
        (dict(value=None), "put 'x': value must be a str"),
        (dict(expected="1"), "expected is for cas only"),
        (dict(invoke=True), "invoke must be a number"),
        (dict(invoke=float("nan")), "invoke must be finite"),
        (dict(complete=float("inf")), "use complete=None for an unknown outcome"),
        (dict(invoke=5, complete=4), r"complete \(4\) is before invoke \(5\)"),
        (dict(output="x"), "put 'x': output must be None"),
        (dict(complete=None, output="x"), "unknown outcome .* has no output"),
        (dict(kind="get", value=None, output=5), "get 'x': output must be a str or None"),
        (dict(kind="get", value="v"), "get 'x': value must be None"),
        (dict(kind="cas", expected=1, output=True), "expected must be a str or None"),
    ],
)
def test_operation_rejects_bad_fields(fields, message):
    base = dict(
        client=1, kind="put", key="x", value="v", expected=None, output=None, invoke=0, complete=1
    )
    base.update(fields)
    with pytest.raises(ValueError, match=message):
        Operation(**base)


def test_describe():
    assert Operation(2, "get", "x", None, None, "1", 0, 1).describe() == "client 2 get 'x' -> '1'"
    assert (
        Operation(1, "cas", "x", "2", None, None, 0, None).describe()
        == "client 1 cas 'x' None -> '2' (outcome unknown)"
    )
    failed = Operation(1, "cas", "x", "2", "1", False, 0, 1)
    assert failed.describe() == "client 1 cas 'x' '1' -> '2' failed"
