"""Fakes for the node's wiring tests: a WAL that records, fsyncs completed by hand,
and step records built from a list of effects."""
from __future__ import annotations

from typing import Callable

from abcd.raft.config import Configuration
from abcd.raft.effects import Apply, Persist, Reply, Restore, Send, Trace
from abcd.raft.record import EMPTY, ConfigState, SoftState, StepRecord
from abcd.raft.roles import FOLLOWER

QUIET_SOFT = SoftState(None, FOLLOWER, 0, 0)
QUIET_CONFIG = ConfigState(Configuration(frozenset()), Configuration(frozenset()), (), 0, 0)


def record_of(effects=(), *, soft: SoftState = QUIET_SOFT, config: ConfigState = QUIET_CONFIG) -> StepRecord:
    """The step record a core would return with these effects in its parts."""
    messages, replies, traces, committed = [], [], [], []
    persist = restore = None
    for e in effects:
        kind = type(e)
        if kind is Send:
            messages.append(e.message)
        elif kind is Persist:
            persist = e
        elif kind is Reply:
            replies.append(e)
        elif kind is Trace:
            traces.append(e)
        elif kind is Restore:
            restore = e
        elif kind is Apply:
            committed.extend(e.entries)
        else:
            raise TypeError(f"not an effect: {e!r}")
    return StepRecord(
        soft, config, messages or EMPTY, persist, replies or EMPTY, restore, tuple(committed), traces or EMPTY
    )


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

    def reset_log(self, snapshot_index: int, snapshot_term: int) -> None:
        self.calls.append(("wal.reset_log", snapshot_index, snapshot_term))

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


class ManualRunner:
    """Worker-thread jobs (snapshots.Runner) that run only when the test says so."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable, Callable]] = []

    def __call__(self, fn, done) -> None:
        self.jobs.append((fn, done))

    @property
    def pending(self) -> int:
        return len(self.jobs)

    def complete(self) -> None:
        """Run the oldest job, then report its result (or exception) as the loop would."""
        fn, done = self.jobs.pop(0)
        try:
            result = fn()
        except BaseException as error:
            done(None, error)
            return
        done(result, None)


class ListLogger:
    """Enough of a loguru logger to collect what was logged, by level."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def opt(self, **_kwargs) -> "ListLogger":
        return self

    def bind(self, **_kwargs) -> "ListLogger":
        return self

    def _log(self, level: str, message: str, *args) -> None:
        self.records.append((level, message.format(*args)))

    def info(self, message, *args):
        self._log("INFO", message, *args)

    def warning(self, message, *args):
        self._log("WARNING", message, *args)

    def error(self, message, *args):
        self._log("ERROR", message, *args)

    def at(self, level: str) -> list[str]:
        return [text for lvl, text in self.records if lvl == level]
