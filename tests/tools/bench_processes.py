"""Helpers shared by the benchmark tool's tests: is a process alive, and does an
interrupted run stop cleanly."""
from __future__ import annotations

import signal
import subprocess


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def interrupt_and_expect_clean_exit(proc: subprocess.Popen, pids: list[int]) -> str:
    """Ctrl-C the tool; it must exit with 130, say so, and leave none of `pids` running.

    Returns what it wrote on stderr.
    """
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "interrupted" in err
    assert not [p for p in pids if alive(p)]
    return err
