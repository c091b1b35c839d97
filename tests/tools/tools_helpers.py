"""Helpers for the command-line tool tests: running a tool as a user would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The fake cluster lives with the client tests.
if str(REPO / "tests" / "client") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "client"))


def ctrl_c_as_at_a_terminal() -> None:
    """Popen's preexec_fn for a tool a test will Ctrl-C: SIGINT at its default, as under
    a terminal.  A suite started in the background inherits SIGINT ignored, and so would
    the tool, which would then never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tool_env() -> dict:
    """The environment tools run in: no PYTHONPATH, and UTC so printed times are fixed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TZ"] = "UTC"
    return env


def run_tool(script: str, *args: str, stdin: str | None = None, cwd: Path | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `python tools/<script> args…` from outside the repository and without
    PYTHONPATH: the script itself must find the package."""
    env = tool_env()
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / script), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO.parent, env=env,
    )


class LineReader:
    """Lines of a running process's output, read in a thread so a test can wait for
    the next one with a deadline instead of blocking forever."""

    def __init__(self, stream) -> None:
        import queue
        import threading

        self._lines: queue.Queue = queue.Queue()
        self._empty = queue.Empty

        def pump() -> None:
            for line in stream:
                self._lines.put(line.rstrip("\n"))
            self._lines.put(None)  # end of output

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except self._empty:
            raise AssertionError(f"no output line within {timeout}s") from None
        if line is None:
            raise AssertionError("the process ended its output")
        return line


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`abcd.cli.main(args)` in this process (much faster than a subprocess), with its
    stdin, stdout and stderr captured like run_tool's."""
    import contextlib
    import io

    from abcd.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved_stdin
    return subprocess.CompletedProcess(["abcdctl", *args], code, out.getvalue(), err.getvalue())


def load_tool(name: str):
    """Import tools/<name>.py as a module (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"abcd_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def assert_every_scale_figure(result: dict, keys: int) -> None:
    """One `tools/scale.py --json` result: every figure measured, for a leader and two followers."""
    assert result["keys"] == keys
    assert result["restart_s"] > 0 and result["catchup_s"] > 0 and result["catchup_rss"] > 0
    members = result["members"]
    assert sorted(m["role"] for m in members) == ["follower", "follower", "leader"]
    for m in members:
        assert 0 < m["rss_before"] <= m["rss_peak"], m
        assert m["rss_after"] > 0 and m["rss_after_restart"] > 0, m
        assert m["data_dir"] > keys * (16 + 100), m  # the WAL alone holds every key and value
