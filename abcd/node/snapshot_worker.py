"""The one worker thread that does every snapshot file operation of a node.

Waiting for the child that saves a taken snapshot, saving installed snapshots and
pruning all run here, one at a time, so they never race: pruning deletes stale temp
files, which could otherwise be one being written.  It is not the fsync thread, so no
WAL fsync ever waits behind a snapshot.
"""
from __future__ import annotations

import asyncio
import sys
from concurrent.futures import Executor
from typing import Any, Callable

from ..storage import prune_snapshots

# Snapshot files and covered WAL segments kept by default (etcd's --max-snapshots and
# --max-wals); 0 keeps them all.
KEEP_SNAPSHOTS = 2
KEEP_WAL_SEGMENTS = 2

Done = Callable[[Any, BaseException | None], None]
# run(fn, done): run fn() in a worker thread, then done(result, error) on the loop.
Runner = Callable[[Callable[[], Any], Done], None]


def prune(data_dir: str, keep: int) -> list[str]:
    """Delete all but the `keep` newest snapshot files (0: none), and stale temp files."""
    return prune_snapshots(data_dir, keep=keep or sys.maxsize)


def thread_runner(loop: asyncio.AbstractEventLoop, executor: Executor) -> Runner:
    """Run jobs in `executor` and report back on `loop` (never inside `run` itself)."""

    def run(fn: Callable[[], Any], done: Done) -> None:
        future = loop.run_in_executor(executor, fn)

        def finished(f: asyncio.Future) -> None:
            if f.cancelled():
                done(None, asyncio.CancelledError("snapshot job cancelled"))
            elif f.exception() is not None:
                done(None, f.exception())
            else:
                done(f.result(), None)

        future.add_done_callback(finished)

    return run


class Worker:
    """Jobs handed to the worker thread (through a Runner), counted so that the node
    can wait until none is in flight before it stops."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._jobs = 0  # worker-thread jobs not yet reported back
        self._idle_waiters: list[asyncio.Future] = []

    async def wait_idle(self) -> None:
        """Until no worker-thread job is in flight."""
        if self._jobs:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def submit(self, fn: Callable[[], Any], done: Done) -> None:
        self._jobs += 1

        def finished(result: Any, error: BaseException | None) -> None:
            self._jobs -= 1
            try:
                done(result, error)
            finally:
                if not self._jobs:
                    waiters, self._idle_waiters = self._idle_waiters, []
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(None)

        self._run(fn, finished)
