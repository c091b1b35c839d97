"""tools/scale.py with etcd: choosing the systems, the side-by-side table, and one tiny
real run against etcd (skipped where no etcd binary is installed).

A tool, not a timed test: nothing here asserts on speed or on a figure's size, only
that every figure was measured for both systems and is shown beside its counterpart.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tools_helpers import assert_every_scale_figure

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from benchlib.scale import MemberFigures, ScaleResult  # noqa: E402
from benchlib.scale_compare import side_by_side  # noqa: E402
from scale import build_parser, parse_targets  # noqa: E402

SCALE = REPO / "tools" / "scale.py"
MB = 2**20


def test_targets_are_one_system_both_in_a_given_order_or_both():
    assert parse_targets("abcd") == ("abcd",)
    assert parse_targets("etcd") == ("etcd",)
    assert parse_targets("abcd,etcd") == ("abcd", "etcd")
    assert parse_targets("etcd, abcd") == ("etcd", "abcd")
    assert parse_targets("both") == ("abcd", "etcd")
    for bad in ("", "zookeeper", "abcd,abcd", "abcd,etcd,consul"):
        with pytest.raises(argparse.ArgumentTypeError, match="--target"):
            parse_targets(bad)


def test_the_default_target_is_abcd_alone_and_etcd_is_found_on_path_unless_named():
    opts = build_parser().parse_args(["--scale", "10"])
    assert opts.target == ("abcd",) and opts.etcd_binary == "etcd"
    opts = build_parser().parse_args(["--scale", "10", "--target", "both", "--etcd", "/opt/etcd/etcd"])
    assert opts.target == ("abcd", "etcd") and opts.etcd_binary == "/opt/etcd/etcd"


def _result(keys: int, leader: str, per_member_mb: int, data_mb: int, restart_s: float, catchup_s: float) -> ScaleResult:
    names = ["m1", "m2", "m3"]
    members = [MemberFigures(name, "leader" if name == leader else "follower", 20 * MB,
                             (per_member_mb + (10 if name == leader else 0)) * MB, per_member_mb * MB, data_mb * MB,
                             per_member_mb * MB)
               for name in names]
    return ScaleResult(keys, 1.5, members, restart_s, catchup_s, per_member_mb * MB)


def test_side_by_side_pairs_the_leaders_and_divides_the_first_system_by_the_second():
    series = {"abcd": [_result(100_000, "m3", 120, 18, 6.0, 4.0)],
              "etcd": [_result(100_000, "m1", 240, 90, 3.0, 8.0)]}
    lines = side_by_side(series, "abcd", "etcd").splitlines()
    assert "abcd/etcd" in lines[1]
    leader_row = next(line for line in lines if "leader" in line)
    cells = [cell.split() for cell in leader_row.split("|")]
    assert cells[0] == ["100,000", "leader"]
    assert cells[1] == ["130", "250", "0.52"]  # peak: each system's leader, 130/250
    assert cells[2] == ["120", "240", "0.50"]  # after
    assert cells[3] == [f"{100 * MB / 100_000:,.0f}", f"{220 * MB / 100_000:,.0f}", "0.45"]  # B/key: (after - before) / N
    assert cells[4] == ["18", "90", "0.20"]  # data dir
    assert cells[5] == ["120", "240"]  # after the restart
    assert sum("follower" in line for line in lines) == 2
    times = lines[-1].split("|")
    assert times[2].split() == ["6.00", "3.00", "2.00"] and times[3].split() == ["4.00", "8.00", "0.50"]


def test_a_size_one_system_did_not_reach_shows_dashes_for_it():
    series = {"abcd": [_result(10, "m1", 50, 1, 1.0, 1.0), _result(20, "m1", 60, 2, 1.0, 1.0)],
              "etcd": [_result(10, "m2", 40, 60, 1.0, 1.0)]}
    text = side_by_side(series, "abcd", "etcd")
    row_20 = next(line for line in text.splitlines() if line.strip().startswith("20 "))
    assert row_20.split("|")[1].split() == ["70", "-", "-"]  # abcd's leader's peak, no etcd beside it
    assert text.splitlines()[-1].split("|")[1].split() == ["1.5", "-", "-"]


needs_etcd = pytest.mark.skipif(shutil.which("etcd") is None,
                                reason="no etcd binary on PATH (install etcd 3.4+ to run the etcd scale test)")


@pytest.mark.integration
@needs_etcd
def test_a_run_of_200_keys_on_etcd_reports_every_figure_for_every_member(tmp_path):
    out = tmp_path / "scale.json"
    scratch = tmp_path / "tmp"  # where the tool makes the members' data dirs
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(SCALE), "--scale", "200", "--target", "etcd", "--json", str(out)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "etcd restart of all 3 after kill -9" in done.stderr
    report = json.loads(out.read_text())
    assert report["systems"] == ["etcd"]
    (result,) = report["results"]
    assert result["system"] == "etcd"
    assert_every_scale_figure(result, 200)
    assert "etcd" in done.stdout and "leader" in done.stdout
    assert list(scratch.iterdir()) == []  # the members' data dirs were removed
