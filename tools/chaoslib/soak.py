"""The soak's resource samples: every member's resident memory, open file descriptors,
asyncio tasks alive and data dir size, taken at a fixed interval while the clients and
the nemesis run, then reported per member (first, largest, last, and the growth from
the second quarter of the run to the last one: a leak grows, a bounded resource does not).

Memory and descriptors come from /proc (Linux); the tasks from the member's /metrics
(`abcd_asyncio_tasks`); the data dir's size is the sum of its files' sizes.  A member
that is down (killed, paused, being replaced) when a sample is taken has no value in it.
"""
from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections import defaultdict

from benchlib.procstat import dir_bytes, rss_bytes

from .cluster import ChaosCluster, NodeProcess

METRICS = (
    ("rss_mib", "resident memory (MiB)"),
    ("fds", "open file descriptors"),
    ("tasks", "asyncio tasks alive"),
    ("data_mib", "data dir size (MiB)"),
)


def rss_mib(pid: int) -> float | None:
    rss = rss_bytes(pid)
    return None if rss is None else rss / 2**20


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def asyncio_tasks(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1.0) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("abcd_asyncio_tasks{"):
                    return int(float(line.split()[-1]))
    except (OSError, ValueError):
        pass
    return None


def dir_mib(path: str) -> float:
    return dir_bytes(path) / 2**20


def sample(node: NodeProcess) -> dict[str, float | None]:
    running = node.running
    pid = node.proc.pid if running else None
    return {
        "rss_mib": rss_mib(pid) if pid else None,
        "fds": open_fds(pid) if pid else None,
        "tasks": asyncio_tasks(node.port) if running else None,
        "data_mib": dir_mib(node.data_dir),
    }


class Sampler:
    def __init__(self, cluster: ChaosCluster, every: float, started: float) -> None:
        self.cluster = cluster
        self.every = every
        self.started = started
        # member -> metric -> [(seconds since the start, value)]
        self.series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))

    @staticmethod
    def member(node: NodeProcess) -> str:
        return os.path.basename(node.data_dir)  # n1, n2...: stable across restarts and replacements

    def take(self) -> None:
        at = round(time.monotonic() - self.started, 1)
        for node in list(self.cluster.nodes):
            for metric, value in sample(node).items():
                if value is not None:
                    self.series[self.member(node)][metric].append((at, value))

    async def run(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            await asyncio.to_thread(self.take)
            await asyncio.sleep(min(self.every, max(0.0, stop_at - time.monotonic())))

    def as_dict(self) -> dict:
        return {member: {metric: points for metric, points in metrics.items()}
                for member, metrics in sorted(self.series.items())}

    def report(self) -> list[str]:
        lines = [f"{'member':8} {'metric':24} {'first':>9} {'max':>9} {'last':>9} {'growth, 2nd to 4th quarter':>27}"]
        for member, metrics in sorted(self.series.items()):
            for metric, label in METRICS:
                points = metrics.get(metric)
                if not points:
                    continue
                values = [v for _, v in points]
                lines.append(f"{member:8} {label:24} {_fmt(values[0]):>9} {_fmt(max(values)):>9} "
                             f"{_fmt(values[-1]):>9} {growth(points):>27}")
        return lines


def growth(points: list[tuple[float, float]]) -> str:
    """The mean of the last quarter's samples against the second quarter's (the first
    quarter is the warm-up: caches, connections, the first snapshot)."""
    if len(points) < 8:
        return "too few samples"
    end = points[-1][0]
    second = [v for t, v in points if end / 4 <= t < end / 2]
    last = [v for t, v in points if t >= 3 * end / 4]
    if not second or not last:
        return "too few samples"
    before, after = sum(second) / len(second), sum(last) / len(last)
    if before == 0:
        return f"{after - before:+.1f}"
    return f"{100 * (after - before) / before:+.0f} %"


def _fmt(value: float) -> str:
    return f"{value:.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
