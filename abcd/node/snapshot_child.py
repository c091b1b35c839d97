"""Writing a snapshot in a forked child process, outside the node's interpreter lock.

Why a process: encoding a big store is pure CPU work in the interpreter (0.4 s for
10,000 keys with their history).  In a worker thread it shares the GIL with the event
loop, which then waits up to a switch interval (5 ms) each time it wants the lock
back: the writes that arrive meanwhile stall, and the snapshot's seconds show up as
the cluster's p99.  A forked child holds a copy-on-write image of the process as it
was at the fork, so it needs no capture at all, runs on its own lock, and at a lower
priority than the node, so the node's own work keeps the CPU when both want it.

The fork happens on the event loop's thread, between two pipeline steps, so the image
the child sees is the store exactly at the applied index.  The child:

- first closes every file descriptor it inherited except its report pipe, so that no
  socket, the WAL's lock or the event loop's descriptors live on in it (a node
  restarted while a child still ran would otherwise find its WAL locked);
- asks the kernel (Linux) to kill it when the node dies, so that no orphan goes on
  writing, or holding the copies of descriptors it has not closed yet, after a crash;
- resets the signal handlers the node installed (they would wake the parent's loop
  through the inherited wake-up descriptor);
- runs `write()`, writes a one-line reason to the pipe if it fails, and leaves with
  os._exit: no atexit handler, no buffered stream, no test framework of a parent runs
  twice.

The parent's side waits in a worker thread (`ForkedWriter.wait`): it reads the pipe to
its end, reaps the child and raises SnapshotChildError with the child's reason if it
did not succeed.  Where fork does not exist (or fails: no memory, too many processes)
`start` returns None and the caller writes in a thread instead.
"""
from __future__ import annotations

import os
import signal
import sys
import warnings
from typing import Callable

# The child's niceness: when the node and the child both want the CPU, the node wins
# about nine tenths of it (CFS weights 1024 against 110).
CHILD_NICENESS = 10
_MAX_REASON = 4096
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SnapshotChildError(RuntimeError):
    """The child writing a snapshot failed; str() says how."""


class ForkedWriter:
    """A child process running one write; `wait()` (in a worker thread) reaps it."""

    def __init__(self, pid: int, report_fd: int) -> None:
        self.pid = pid
        self._report_fd = report_fd

    def wait(self) -> None:
        """Block until the child has exited; raise SnapshotChildError unless it succeeded."""
        chunks = []
        try:
            while True:
                chunk = os.read(self._report_fd, _MAX_REASON)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._report_fd)
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            reason = b"".join(chunks).decode("utf-8", "replace").strip()
            how = f"exited with status {code}" if code > 0 else f"was killed by signal {-code}"
            raise SnapshotChildError(f"the process writing the snapshot {how}" + (f": {reason}" if reason else ""))


def start(write: Callable[[], None]) -> ForkedWriter | None:
    """Fork a child that runs `write()` and exits; None if this platform cannot fork."""
    if not hasattr(os, "fork"):
        return None
    set_death_signal = _death_signal_setter()  # resolved here: the child must not load libraries
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a process that has threads.  The child
            # only runs `write`, which takes no lock another thread could hold.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # pragma: no cover - the child; its outcome is checked by the parent
        _run_child(write, read_fd, write_fd, set_death_signal, parent)
    os.close(write_fd)
    return ForkedWriter(pid, read_fd)


def _run_child(
    write: Callable[[], None],
    read_fd: int,
    report_fd: int,
    set_death_signal: Callable[[], None] | None,
    parent: int,
) -> None:  # pragma: no cover - the child
    code = 1
    try:
        if set_death_signal is not None:
            set_death_signal()
            if os.getppid() != parent:
                return  # the node died before the request took effect: nobody would kill us
        os.close(read_fd)
        _close_inherited(keep=report_fd)
        _quiet_signals()
        try:
            os.nice(CHILD_NICENESS)
        except OSError:
            pass
        write()
        code = 0
    except BaseException as error:
        try:
            reason = f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:_MAX_REASON]
            os.write(report_fd, reason)
        except BaseException:
            pass
    finally:
        os._exit(code)


_death_signal: list = []  # [the setter or None], once resolved


def _death_signal_setter() -> Callable[[], None] | None:
    """A function that makes the calling process get SIGKILL when its parent dies
    (Linux prctl); None elsewhere."""
    if not _death_signal:
        setter = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                prctl = ctypes.CDLL(None, use_errno=True).prctl

                def setter() -> None:
                    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

            except (OSError, AttributeError):
                setter = None
        _death_signal.append(setter)
    return _death_signal[0]


def _close_inherited(keep: int) -> None:  # pragma: no cover - runs in the child
    # 0-2 stay (a crash report would go to the node's stderr).
    os.closerange(3, keep)
    os.closerange(keep + 1, _max_fd())


def _max_fd() -> int:  # pragma: no cover - runs in the child
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (AttributeError, ValueError, OSError):
        return 65536


def _quiet_signals() -> None:  # pragma: no cover - runs in the child
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass  # not the main thread: no handlers of ours to undo
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (ValueError, OSError):
            pass
