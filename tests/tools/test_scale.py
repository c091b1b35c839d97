"""tools/scale.py: its option parsing, its progress lines, and one short real run.

A tool, not a timed test: nothing here asserts on speed or on a memory figure's size,
only that every figure was measured and is consistent.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tools_helpers import assert_every_scale_figure

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from benchlib import scale as scalelib  # noqa: E402
from scale import parse_sizes  # noqa: E402

SCALE = REPO / "tools" / "scale.py"


def test_sizes_are_positive_counts_separated_by_commas():
    assert parse_sizes("2000") == [2000]
    assert parse_sizes("100_000,300000") == [100_000, 300_000]
    for bad in ("", "ten", "0", "5,-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="--scale"):
            parse_sizes(bad)


def test_keys_and_values_have_the_sizes_the_issue_names_and_all_differ():
    keys = {scalelib.key_of(i) for i in range(1000)}
    values = {scalelib.value_of(i) for i in range(1000)}
    assert len(keys) == len(values) == 1000
    assert {len(k) for k in keys} == {16} and {len(v) for v in values} == {100}


def test_progress_off_a_terminal_is_a_plain_line_every_tenth(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = scalelib.Bar(100, "loading")
    for _ in range(100):
        bar.update(1)
    bar.close()
    lines = err.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].strip() == "loading: 100/100 keys"


def test_a_restart_shows_each_member_answering_again_then_the_read(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    members = ["m1", "m2", "m3"]
    polls = {"n": 0}

    def answers(member):  # m1 answers from the first poll, m2 from the second, m3 never
        return member == "m1" or (member == "m2" and polls["n"] >= 2)

    def read():
        polls["n"] += 1
        return polls["n"] >= 4

    scalelib.wait_restarted(members, answers, read, "restarting")
    lines = [line.strip() for line in err.getvalue().splitlines()]
    assert lines == ["restarting: 1/4 steps", "restarting: 2/4 steps", "restarting: 4/4 steps"]


def test_a_run_of_2000_keys_reports_every_figure_for_every_member(tmp_path):
    out = tmp_path / "scale.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(SCALE), "--scale", "2000", "--json", str(out)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "restart of all 3 after kill -9" in done.stderr
    (result,) = json.loads(out.read_text())["results"]
    assert_every_scale_figure(result, 2000)
    assert "2,000" in done.stdout and "leader" in done.stdout


def test_etcd_without_its_binary_is_refused_with_a_reason_rather_than_half_measured():
    done = subprocess.run([sys.executable, str(SCALE), "--scale", "10", "--target", "abcd,etcd",
                           "--etcd", "no-such-etcd-binary"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--target etcd needs an etcd binary: 'no-such-etcd-binary' is not on PATH" in done.stderr
    assert done.stdout == ""  # nothing measured, not even abcd
