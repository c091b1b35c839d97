"""Client histories of the key-value store: what each client asked and what it was told.

A history is a sequence of `Operation`s, each an interval of real time from the moment
the client sent the request (`invoke`) to the moment it received the answer (`complete`).
The checker in `linearizability.py` decides whether some order of these operations,
each placed at one instant inside its interval, is what a single register per key
would have produced.

Three outcomes are possible for a request, and the recorder keeps them apart because
they mean different things to the checker:

- **ok**: the answer arrived; the operation took effect exactly once inside its interval.
- **unknown** (a timeout, a `504`, a crashed connection): the operation may have taken
  effect, at any time after `invoke`, or never.  `complete` is None.
- **fail** (a definite refusal, e.g. a `400` or a `503` before anything was proposed):
  the operation did not take effect, so it is left out of the history altogether.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

KINDS = ("put", "get", "delete", "cas")


@dataclass(frozen=True, slots=True)
class Operation:
    """One client request on one key.

    - put:    `value` is written; `output` is None.
    - get:    `output` is the value read, or None if the key was absent.
    - delete: the key becomes absent; `output` is None.
    - cas:    if the key holds `expected` (None: the key is absent) it becomes `value`;
              `output` is True if the swap happened, False if not.
    `complete` None means the outcome is unknown; `output` must then be None.
    """

    client: int | str
    kind: str
    key: str
    value: str | None
    expected: str | None
    output: Any
    invoke: float
    complete: float | None

    def __post_init__(self) -> None:
        # Validate at construction so that a malformed history fails where it was
        # built, with a message naming the field, not deep inside the search.
        if self.kind not in KINDS:
            raise ValueError(f"operation kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.key, str):
            raise ValueError(f"{self.kind}: key must be a str, got {self.key!r}")
        where = f"{self.kind} {self.key!r}"
        if self.kind in ("put", "cas"):
            if not isinstance(self.value, str):
                raise ValueError(f"{where}: value must be a str, got {self.value!r}")
        elif self.value is not None:
            raise ValueError(f"{where}: value must be None, got {self.value!r}")
        if self.kind == "cas":
            if self.expected is not None and not isinstance(self.expected, str):
                raise ValueError(f"{where}: expected must be a str or None, got {self.expected!r}")
        elif self.expected is not None:
            raise ValueError(f"{where}: expected is for cas only, got {self.expected!r}")
        _check_time(where, "invoke", self.invoke)
        if self.complete is None:
            if self.output is not None:
                raise ValueError(
                    f"{where}: an operation with unknown outcome (complete=None) "
                    f"has no output, got {self.output!r}"
                )
            return
        _check_time(where, "complete", self.complete)
        if self.complete < self.invoke:
            raise ValueError(
                f"{where}: complete ({self.complete}) is before invoke ({self.invoke})"
            )
        if self.kind == "get":
            if self.output is not None and not isinstance(self.output, str):
                raise ValueError(f"{where}: output must be a str or None, got {self.output!r}")
        elif self.kind == "cas":
            if not isinstance(self.output, bool):
                raise ValueError(f"{where}: output must be True or False, got {self.output!r}")
        elif self.output is not None:
            raise ValueError(f"{where}: output must be None, got {self.output!r}")

    @property
    def unknown(self) -> bool:
        return self.complete is None

    def describe(self) -> str:
        """A short human form, e.g. `client 2 get 'x' -> '1'`."""
        if self.kind == "put":
            what = f"put {self.key!r} = {self.value!r}"
        elif self.kind == "get":
            what = f"get {self.key!r}" + ("" if self.unknown else f" -> {self.output!r}")
        elif self.kind == "delete":
            what = f"delete {self.key!r}"
        else:
            what = f"cas {self.key!r} {self.expected!r} -> {self.value!r}"
            if not self.unknown:
                what += " succeeded" if self.output else " failed"
        if self.unknown:
            what += " (outcome unknown)"
        return f"client {self.client} {what}"


def _check_time(where: str, name: str, t: object) -> None:
    # bool is an int subclass; a True timestamp is a bug, not a time.
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise ValueError(f"{where}: {name} must be a number, got {t!r}")
    if not math.isfinite(t):
        hint = " (use complete=None for an unknown outcome)" if name == "complete" else ""
        raise ValueError(f"{where}: {name} must be finite, got {t!r}{hint}")


class HistoryRecorder:
    """Collects a history while clients run.

    `invoke` returns a handle; exactly one of `ok`, `unknown` or `fail` resolves it.
    Times come from `clock` (the simulator passes its virtual clock) unless given
    explicitly with `at=`.  An operation still pending when `operations()` is called is
    reported with an unknown outcome: its client never heard back, which is exactly
    what "unknown" means.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Integration tests may record from several threads; a lock keeps handles unique.
        self._lock = threading.Lock()
        self._operations: list[Operation | None] = []  # None: dropped by fail()
        self._resolved: list[bool] = []

    def invoke(
        self,
        client: int | str,
        kind: str,
        key: str,
        value: str | None = None,
        expected: str | None = None,
        *,
        at: float | None = None,
    ) -> int:
        t = self._clock() if at is None else at
        # Built now, so bad arguments are reported at the call that made them.
        op = Operation(client, kind, key, value, expected, None, t, None)
        with self._lock:
            self._operations.append(op)
            self._resolved.append(False)
            return len(self._operations) - 1

    def ok(self, handle: int, output: Any = None, *, at: float | None = None) -> None:
        t = self._clock() if at is None else at
        with self._lock:
            op = self._pending(handle, "ok")
            self._operations[handle] = replace(op, output=output, complete=t)
            self._resolved[handle] = True

    def unknown(self, handle: int) -> None:
        with self._lock:
            self._pending(handle, "unknown")
            self._resolved[handle] = True

    def fail(self, handle: int) -> None:
        with self._lock:
            self._pending(handle, "fail")
            self._operations[handle] = None
            self._resolved[handle] = True

    @property
    def pending(self) -> int:
        with self._lock:
            return self._resolved.count(False)

    def operations(self) -> tuple[Operation, ...]:
        with self._lock:
            return tuple(op for op in self._operations if op is not None)

    def _pending(self, handle: int, verb: str) -> Operation:
        valid = isinstance(handle, int) and not isinstance(handle, bool)
        if not valid or not 0 <= handle < len(self._operations):
            raise ValueError(f"{verb}: no operation with handle {handle!r}")
        if self._resolved[handle]:
            raise ValueError(f"{verb}: operation {handle} was already resolved")
        op = self._operations[handle]
        assert op is not None  # only fail() stores None, and it also marks it resolved
        return op
