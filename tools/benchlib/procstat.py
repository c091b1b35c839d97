"""CPU use read straight from /proc (Linux): per process and for the whole machine.

A process's CPU time is utime + stime from /proc/<pid>/stat (all its threads, so the
nodes' fsync threads count); CPU % is that time over the wall-clock window, so 100 %
is one full core.  Machine busy % is of all cores together.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by `pid`; None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return parse_stat_cpu_seconds(raw)


def parse_stat_cpu_seconds(raw: bytes) -> float:
    # The command name (field 2) is in parentheses and may hold spaces or ')': the
    # fields after it are counted from the *last* ')'.  utime and stime are fields
    # 14 and 15 of the line, i.e. the 12th and 13th after the name.
    rest = raw[raw.rindex(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    wall: float
    processes: dict  # name -> CPU seconds (None: gone)
    machine: tuple[int, int]


class CpuMeter:
    """Named processes whose CPU % over a window is wanted."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)

    def snapshot(self) -> CpuSnapshot:
        return CpuSnapshot(time.monotonic(), {n: process_cpu_seconds(p) for n, p in self.pids.items()},
                           machine_ticks())

    @staticmethod
    def percent(before: CpuSnapshot, after: CpuSnapshot) -> dict:
        """{"processes": {name: % of one core}, "machine_busy": % of all cores}."""
        wall = after.wall - before.wall
        if wall <= 0:
            raise ValueError("CPU window has no length")
        processes = {}
        for name, start in before.processes.items():
            end = after.processes.get(name)
            processes[name] = None if start is None or end is None else round(100 * (end - start) / wall, 1)
        busy = after.machine[0] - before.machine[0]
        total = after.machine[1] - before.machine[1]
        return {"processes": processes, "machine_busy": round(100 * busy / total, 1) if total else None}


def pids_listening_on(ports: list[int]) -> dict[int, int]:
    """port -> pid of the process listening on it on this machine (best effort).

    Used for servers this tool did not start (etcd, running abcd nodes): /proc/net/tcp
    names the listening socket's inode, and /proc/<pid>/fd links name their sockets.
    Processes of other users are invisible without privileges and simply not found.
    """
    inode_port: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != "0A":  # 0A = LISTEN
                continue
            port = int(cols[1].rsplit(":", 1)[1], 16)
            if port in ports:
                inode_port[cols[9]] = port
    found: dict[int, int] = {}
    if not inode_port:
        return found
    wanted = {f"socket:[{inode}]": port for inode, port in inode_port.items()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            port = wanted.get(link)
            if port is not None:
                found.setdefault(port, int(entry))
        if len(found) == len(set(wanted.values())):
            break
    return found


def signal_me_when_parent_dies(signum: int = signal.SIGTERM) -> None:
    """Linux: the kernel sends `signum` to this process when its parent exits, even by
    SIGKILL, so nothing this tool started outlives it.  Elsewhere: a no-op."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        pass


def rss_bytes(pid: int) -> int | None:
    """Resident set size of `pid` (VmRSS), None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def dir_bytes(path: str) -> int:
    """Bytes of the files under `path` (a file deleted while walking counts as gone)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
