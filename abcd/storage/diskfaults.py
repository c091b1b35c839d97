"""Disk faults for tests: make the storage layer's writes and fsyncs fail, or slow.

A node started with the hidden `--disk-fault SPEC` flag (docs/storage.md, "Disk
faults") calls `arm(SPEC)` before it opens anything.  Arming replaces the `os` module
seen by files.py and wal.py (every write and fsync of the WAL, snapshots and
meta.json goes through them) with a stand-in that fails or delays those calls and
passes everything else to the real `os`.  Unarmed, nothing is replaced: the hot path
pays nothing, not even a check.

SPEC is one of:

    fsync-eio[:after=N]     fsync/fdatasync raise EIO from the (N+1)th on
    write-eio[:after=N]     the (N+1)th write is short (half its bytes), every later one raises EIO
    enospc[:after=N]        the same with ENOSPC: a disk that fills up
    fsync-delay:ms=MS       every fsync/fdatasync sleeps MS milliseconds first (a slow disk)

N counts the calls of that kind made since the process started (start-up writes
included) and defaults to 0.  Once tripped, a fault stays: a disk that said no once
is not trusted again (after a failed fsync the kernel may have dropped the dirty
pages).  Clearing the fault means restarting the node without the flag.
"""
from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass

from .errors import StorageError

KINDS = ("fsync-eio", "write-eio", "enospc", "fsync-delay")


@dataclass(frozen=True)
class DiskFault:
    kind: str
    after: int = 0  # calls of the kind that succeed before the fault trips
    delay_ms: int = 0  # fsync-delay only

    def __str__(self) -> str:
        if self.kind == "fsync-delay":
            return f"fsync-delay:ms={self.delay_ms}"
        return f"{self.kind}:after={self.after}"


def parse(spec: str) -> DiskFault:
    """`fsync-eio:after=20` -> DiskFault; ValueError naming what is wrong."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown disk fault {kind!r}: expected one of {', '.join(KINDS)}")
    params: dict[str, int] = {}
    for part in filter(None, rest.split(",")):
        name, _, value = part.partition("=")
        allowed = ("ms",) if kind == "fsync-delay" else ("after",)
        if name not in allowed:
            raise ValueError(f"disk fault {kind}: unknown parameter {name!r} (takes {', '.join(allowed)})")
        try:
            params[name] = int(value)
        except ValueError:
            raise ValueError(f"disk fault {kind}: {name} must be an integer, not {value!r}") from None
        if params[name] < 0:
            raise ValueError(f"disk fault {kind}: {name} must be >= 0, not {params[name]}")
    if kind == "fsync-delay":
        if "ms" not in params:
            raise ValueError("disk fault fsync-delay needs ms=MILLISECONDS")
        return DiskFault(kind, delay_ms=params["ms"])
    return DiskFault(kind, after=params.get("after", 0))


class FaultyOS:
    """The `os` module, except for the calls a DiskFault breaks."""

    def __init__(self, fault: DiskFault) -> None:
        self._fault = fault
        self._lock = threading.Lock()  # the WAL writes on the loop and syncs in a thread
        self._fsyncs = 0
        self._writes = 0
        self.tripped = False

    def __getattr__(self, name: str):
        return getattr(os, name)

    # ------------------------------------------------------------------ fsync

    def fsync(self, fd: int) -> None:
        self._before_sync()
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        self._before_sync()
        os.fdatasync(fd)

    def _before_sync(self) -> None:
        fault = self._fault
        if fault.kind == "fsync-delay":
            time.sleep(fault.delay_ms / 1000)
        elif fault.kind == "fsync-eio":
            with self._lock:
                self._fsyncs += 1
                if self._fsyncs > fault.after:
                    self.tripped = True
            if self.tripped:
                raise OSError(errno.EIO, f"{os.strerror(errno.EIO)} (injected disk fault {fault})")

    # ------------------------------------------------------------------ writes

    def write(self, fd: int, data) -> int:
        return os.write(fd, self._allowed(data))

    def pwrite(self, fd: int, data, offset: int) -> int:
        return os.pwrite(fd, self._allowed(data), offset)

    def pwritev(self, fd: int, buffers, offset: int) -> int:
        return os.pwrite(fd, self._allowed(b"".join(buffers)), offset)

    def _allowed(self, data):
        """What of `data` may be written: all of it, half of it (the write that trips the
        fault comes up short, as on a disk that fills up mid-write), or raise."""
        fault = self._fault
        if fault.kind not in ("write-eio", "enospc"):
            return data
        code = errno.EIO if fault.kind == "write-eio" else errno.ENOSPC
        with self._lock:
            self._writes += 1
            if self.tripped:
                raise OSError(code, f"{os.strerror(code)} (injected disk fault {fault})")
            if self._writes <= fault.after:
                return data
            self.tripped = True
        view = memoryview(data).cast("B")
        if len(view) < 2:
            raise OSError(code, f"{os.strerror(code)} (injected disk fault {fault})")
        return view[: len(view) // 2]


_armed: FaultyOS | None = None


def arm(spec: str) -> FaultyOS:
    """Make this process's storage writes and fsyncs fail or slow down as SPEC says."""
    global _armed
    if _armed is not None:
        raise StorageError(f"a disk fault is armed already ({_armed._fault})")
    from . import files, wal

    _armed = FaultyOS(parse(spec))
    files.os = _armed
    wal.os = _armed
    return _armed


def disarm() -> None:
    """Give files.py and wal.py the real `os` back (for tests that arm in-process)."""
    global _armed
    from . import files, wal

    files.os = os
    wal.os = os
    _armed = None


def armed() -> DiskFault | None:
    return _armed._fault if _armed is not None else None
