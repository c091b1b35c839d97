"""Fakes for the node's wiring tests: a WAL that records, fsyncs completed by hand."""
from __future__ import annotations

from typing import Callable


class RecordingWAL:
    """Records writes and syncs into a shared call log (to check ordering across sinks)."""

    def __init__(self, calls: list | None = None, fail_write: bool = False) -> None:
        self.calls = calls if calls is not None else []
        self.written = []
        self.syncs = 0
        self.fail_write = fail_write

    def write(self, persist) -> None:
        if self.fail_write:
            raise OSError("disk full")
        self.written.append(persist)
        self.calls.append(("wal.write", persist.seq))

    def sync(self) -> None:
        self.syncs += 1
        self.calls.append(("wal.sync",))


class ManualSync:
    """A sync runner whose fsyncs complete only when the test says so."""

    def __init__(self) -> None:
        self.started: list[tuple[Callable[[], None], Callable]] = []

    def __call__(self, fn, done) -> None:
        self.started.append((fn, done))

    @property
    def in_flight(self) -> int:
        return len(self.started)

    def complete(self, error: BaseException | None = None) -> None:
        """Finish the oldest fsync in flight (running its function first, as a thread would)."""
        fn, done = self.started.pop(0)
        if error is None:
            fn()
        done(error)
