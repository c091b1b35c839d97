"""The forked child that writes a snapshot: it reports success, failure and death, and
keeps none of the parent's descriptors open."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from abcd.node import snapshot_child
from abcd.node.snapshot_child import SnapshotChildError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def test_the_child_runs_the_write_and_succeeds(tmp_path):
    target = tmp_path / "out"

    def write() -> None:
        target.write_bytes(b"written by the child")

    child = snapshot_child.start(write)
    assert child is not None and child.pid != os.getpid()
    child.wait()
    assert target.read_bytes() == b"written by the child"


def test_a_failing_write_is_reported_with_its_reason():
    def write() -> None:
        raise ValueError("the store would not encode")

    child = snapshot_child.start(write)
    with pytest.raises(SnapshotChildError, match=r"exited with status 1: ValueError: the store would not encode"):
        child.wait()


def test_a_child_killed_by_a_signal_is_reported():
    def write() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    child = snapshot_child.start(write)
    with pytest.raises(SnapshotChildError, match=r"was killed by signal 9"):
        child.wait()


def test_the_child_holds_none_of_the_parents_descriptors(tmp_path):
    # A lock like the WAL's: were the child to keep its descriptor, the lock would
    # outlive the parent's close and a restarted node would find its WAL locked.
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def write() -> None:
        try:
            os.fstat(fd)
        except OSError:
            return
        raise RuntimeError(f"descriptor {fd} is still open in the child")

    child = snapshot_child.start(write)
    child.wait()
    os.close(fd)
    other = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: no copy of it lives on
    finally:
        os.close(other)


def test_the_child_runs_at_a_lower_priority(tmp_path):
    target = tmp_path / "nice"

    def write() -> None:
        target.write_text(str(os.nice(0)))

    before = os.nice(0)
    snapshot_child.start(write).wait()
    assert int(target.read_text()) == min(19, before + snapshot_child.CHILD_NICENESS)
    assert os.nice(0) == before


def test_no_fork_means_no_child(monkeypatch):
    monkeypatch.delattr(os, "fork")
    assert snapshot_child.start(lambda: None) is None


def test_a_failed_fork_means_no_child_and_no_leaked_pipe(monkeypatch):
    def fail() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", fail)
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    assert snapshot_child.start(lambda: None) is None
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_child_dies_with_its_node(tmp_path):
    # A node killed mid-snapshot leaves no orphan writing in its data directory.
    script = tmp_path / "node.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from abcd.node import snapshot_child
            child = snapshot_child.start(lambda: time.sleep(60))
            print(child.pid, flush=True)
            time.sleep(60)
            """
        )
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(snapshot_child.__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    node = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        child = int(node.stdout.readline())
        assert alive(child)
    finally:
        node.kill()
        node.wait()
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, f"the child {child} outlived its node"
        time.sleep(0.01)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; its reaper may be slow
