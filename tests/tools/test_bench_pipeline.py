"""tools/bench_pipeline.py: both wirings deliver every step to the sinks, and the
command line prints one line per wiring.  Nothing here asserts on speed."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

import bench_pipeline  # noqa: E402


@pytest.mark.parametrize("wiring", ["node", "rx-plain"])
def test_each_wiring_steps_every_input_through_every_sink(wiring):
    calls = []

    async def run():
        return await bench_pipeline.per_step(wiring, 50, 3, on_sink=calls.append)

    seconds = asyncio.run(run())
    assert seconds > 0
    # 50 steps, each seen by the 3 sinks in the order given.
    assert calls == [0, 1, 2] * 50


def test_the_command_line_reports_both_wirings():
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench_pipeline.py"), "--steps", "200", "--runs", "1"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["node", "rx-plain"]
    assert lines[-1].startswith("rx-plain / node: ")
