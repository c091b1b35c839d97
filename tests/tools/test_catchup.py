"""tools/catchup.py: one short real run reports every phase and the catch-up time.

A tool, not a timed test: nothing here asserts on speed, only that every figure was
measured and is consistent.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CATCHUP = REPO / "tools" / "catchup.py"

pytestmark = pytest.mark.integration


def test_a_short_run_reports_each_phase_and_the_catch_up_by_snapshot(tmp_path):
    out = tmp_path / "catchup.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    # A snapshot every 500 entries (5,000 kept behind it by default): 6,000 keys leave the
    # leader's log starting after index 1, so the new member needs the snapshot.
    done = subprocess.run(
        [sys.executable, str(CATCHUP), "--keys", "6000", "--seconds", "1", "--snapshot-count", "500",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())["result"]
    assert result["keys"] == 6000 and result["snapshot_index"] > 0 and result["catchup_s"] > 0
    assert [p["name"] for p in result["phases"]] == ["baseline", "during catch-up", "after"]
    for phase in result["phases"]:
        figures = phase["figures"]
        assert figures["ops"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], phase
    assert "p99 during / baseline" in done.stdout
