"""tools/logview.py on crafted loguru JSON-lines logs: merging, filters, summary, follow."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tools_helpers import REPO, LineReader, ctrl_c_as_at_a_terminal, load_tool, run_tool, tool_env

logview = load_tool("logview")

T = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC; the tools run with TZ=UTC


def rec(ts: float, message: str, level: str = "INFO", **extra) -> str:
    """One line as loguru's serialize=True writes it."""
    return json.dumps({
        "text": f"... | {level} | {message}\n",
        "record": {"time": {"timestamp": ts, "repr": "..."}, "level": {"name": level, "no": 20},
                   "message": message, "extra": extra, "exception": None},
    }) + "\n"


def write(path: Path, *lines: str, mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as f:
        f.write("".join(lines))
    return path


@pytest.fixture
def cluster_logs(tmp_path) -> Path:
    """Three nodes' logs with an election in term 2 and commits, in tmp_path/abcd-data."""
    data = tmp_path / "abcd-data"
    write(data / "node-8081" / "node.log",
          rec(T + 0.100, "election timeout", node="node-8081", term=1, role="follower", event="Timeout"),
          rec(T + 0.300, "won the election", node="node-8081", term=2, role="leader", event="BecomeLeader"),
          rec(T + 0.500, "commit", node="node-8081", term=2, role="leader", event="AdvanceCommitIndex",
              commit_index=3),
          rec(T + 0.900, "commit", node="node-8081", term=2, role="leader", event="AdvanceCommitIndex",
              commit_index=7))
    write(data / "node-8082" / "node.log",
          rec(T + 0.200, "vote for 1", node="node-8082", term=2, role="follower", event="GrantVote", candidate=1),
          rec(T + 0.300, "same instant, later file", node="node-8082", term=2, role="follower",
              event="BecomeFollower", leader=1),
          rec(T + 2.000, "slow peer", "WARNING", node="node-8082", term=2, role="follower",
              event="ReplicationStalled", peer=3))
    write(data / "node-8083" / "node.log",
          rec(T + 0.250, "vote for 1", node="node-8083", term=2, role="follower", event="GrantVote", candidate=1),
          rec(T + 5.000, "won the election", node="node-8083", term=3, role="leader", event="BecomeLeader"))
    return tmp_path


def view(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_tool("logview.py", *args, cwd=cwd)


def test_logs_are_merged_into_one_aligned_timeline(cluster_logs):
    result = view(cluster_logs)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "22:13:20.100  node-8081  t1   follower   Timeout             election timeout",
        "22:13:20.200  node-8082  t2   follower   GrantVote           vote for 1  candidate=1",
        "22:13:20.250  node-8083  t2   follower   GrantVote           vote for 1  candidate=1",
        "22:13:20.300  node-8081  t2   leader     BecomeLeader        won the election",
        "22:13:20.300  node-8082  t2   follower   BecomeFollower      same instant, later file  leader=1",
        "22:13:20.500  node-8081  t2   leader     AdvanceCommitIndex  commit  commit_index=3",
        "22:13:20.900  node-8081  t2   leader     AdvanceCommitIndex  commit  commit_index=7",
        "22:13:22.000  node-8082  t2   follower   ReplicationStalled  WARNING slow peer  peer=3",
        "22:13:25.000  node-8083  t3   leader     BecomeLeader        won the election",
    ]


def test_files_and_data_dirs_as_arguments_including_rotated_logs(tmp_path):
    write(tmp_path / "n1" / "node.log", rec(T + 2, "current", event="E"))
    write(tmp_path / "n1" / "node.2023-11-14_22-13-20_000000.log", rec(T + 1, "rotated", event="E"))
    b = write(tmp_path / "other.log", rec(T + 3, "from a file", node="x", event="E"))
    result = view(tmp_path, str(tmp_path / "n1"), str(b))
    lines = result.stdout.splitlines()
    # A record without a node is labelled with its data dir's name.
    assert [line.split()[1] for line in lines] == ["n1", "n1", "x"]
    assert [line.rsplit("  ", 1)[-1].strip() for line in lines] == ["rotated", "current", "from a file"]


@pytest.mark.parametrize("args, expected_events", [
    (("--node", "node-8082"), ["GrantVote", "BecomeFollower", "ReplicationStalled"]),
    (("--node", "8083,8081", "--term", "1"), ["Timeout"]),
    (("--term", "3", "--term", "1"), ["Timeout", "BecomeLeader"]),
    (("--event", "becomeleader"), ["BecomeLeader", "BecomeLeader"]),
    (("--event", "GrantVote,Timeout", "--node", "8083"), ["GrantVote"]),
    (("--key", "commit_index=7"), ["AdvanceCommitIndex"]),
    (("--key", "slow"), ["ReplicationStalled"]),
    (("--since", str(T + 1)), ["ReplicationStalled", "BecomeLeader"]),
    (("--since", "22:13:22"), ["ReplicationStalled", "BecomeLeader"]),
    (("--since", "2023-11-14T22:13:24+00:00"), ["BecomeLeader"]),
    (("--node", "nobody"), []),
])
def test_filters(cluster_logs, args, expected_events):
    result = view(cluster_logs, *args)
    assert result.returncode == 0, result.stderr
    assert [line.split()[4] for line in result.stdout.splitlines()] == expected_events


def test_since_a_duration_ago(tmp_path):
    now = time.time()
    write(tmp_path / "n" / "node.log", rec(now - 600, "old", event="Old"), rec(now - 5, "new", event="New"))
    result = view(tmp_path, "--since", "1m", str(tmp_path / "n"))
    assert [line.split()[4] for line in result.stdout.splitlines()] == ["New"]


@pytest.mark.parametrize("text", ["yesterday", "5 minutes", "25:99:00x"])
def test_a_bad_since_is_a_usage_error(cluster_logs, text):
    result = view(cluster_logs, "--since", text)
    assert result.returncode == 2 and f"cannot read {text!r}" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("--term", "two"), "'two' is not a term number"),
    (("missing.log",), "missing.log: no such file or directory"),
    (("--follow", "--summary"), "cannot be combined with --follow"),
])
def test_usage_errors(cluster_logs, args, message):
    result = view(cluster_logs, *args)
    assert result.returncode == 2 and message in result.stderr


def test_no_logs_in_the_default_place_is_a_usage_error(tmp_path):
    result = view(tmp_path)
    assert result.returncode == 2 and "nothing matches abcd-data/*/node.log" in result.stderr


def test_malformed_lines_are_skipped_and_counted(tmp_path):
    log = write(tmp_path / "n" / "node.log",
                rec(T, "good one", event="A"),
                "not json at all\n",
                "\n",  # blank lines are not records but not malformed either
                json.dumps({"text": "no record"}) + "\n",
                json.dumps({"record": {"time": {"timestamp": "soon"}, "message": "bad time"}}) + "\n",
                '{"record": {"time": {"timestamp": 1.0}, "extra": [1]}}\n',
                rec(T + 1, "good two", event="B")[:-1])  # no final newline: still read
    result = view(tmp_path, str(log))
    assert result.returncode == 0
    assert [line.split()[4] for line in result.stdout.splitlines()] == ["A", "B"]
    assert result.stderr == f"logview: skipped 4 malformed lines ({log}: 4)\n"


def test_summary_lists_elections_and_commit_progress_per_node(cluster_logs):
    result = view(cluster_logs, "--summary")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "Elections (BecomeLeader):",
        "  22:13:20.300  t2  node-8081",
        "  22:13:25.000  t3  node-8083",
        "",
        "Nodes:",
        "  NODE       RECORDS  TERMS  LAST ROLE  COMMIT  ADVANCES  LAST SEEN",
        "  node-8081  4        1-2    leader     3 -> 7  2         22:13:20",
        "  node-8082  3        2      follower   -       0         22:13:22",
        "  node-8083  2        2-3    leader     -       0         22:13:25",
    ]


def test_columns_fit_the_widest_value_so_every_line_lines_up(tmp_path):
    log = write(tmp_path / "n" / "node.log",
                rec(T, "", node="n1", term=1, role="follower", event="Timeout"),
                rec(T + 1, "", node="n1", term=1, role="pre_candidate", event="BecomePreCandidate"),
                rec(T + 2, "", node="a-much-longer-node-name", term=12, role="leader", event="X"))
    lines = view(tmp_path, str(log)).stdout.splitlines()
    assert lines == [
        "22:13:20.000  n1                       t1   follower       Timeout",
        "22:13:21.000  n1                       t1   pre_candidate  BecomePreCandidate",
        "22:13:22.000  a-much-longer-node-name  t12  leader         X",
    ]


def test_the_summary_reads_commit_indexes_written_into_messages(tmp_path):
    # The node writes a trace's fields into the message: "commit_index=5".
    log = write(tmp_path / "n" / "node.log",
                rec(T, "commit_index=5", node="n1", term=2, role="leader", event="AdvanceCommitIndex"),
                rec(T + 1, "commit_index=12", node="n1", term=2, role="leader", event="AdvanceCommitIndex"))
    table = view(tmp_path, "--summary", str(log)).stdout.splitlines()
    assert table[-1].split() == ["n1", "2", "2", "leader", "5", "->", "12", "2", "22:13:21"]


def test_the_summary_honours_filters(cluster_logs):
    result = view(cluster_logs, "--summary", "--term", "3")
    assert result.stdout.splitlines()[1:3] == ["  22:13:25.000  t3  node-8083", ""]


# --------------------------------------------------------------------------- following


def test_tailer_returns_only_complete_new_lines(tmp_path):
    path = tmp_path / "node.log"
    tailer = logview.Tailer(path)
    assert tailer.poll() == []  # not there yet
    write(path, "one\ntw")
    assert tailer.poll() == [b"one"]
    write(path, "o\nthree\n", mode="a")
    assert tailer.poll() == [b"two", b"three"]
    assert tailer.poll() == []


def test_tailer_starts_over_after_truncation(tmp_path):
    path = write(tmp_path / "node.log", "one\ntwo\n")
    tailer = logview.Tailer(path)
    assert tailer.poll() == [b"one", b"two"]
    write(path, "new\n")  # truncated and rewritten, shorter than before
    assert tailer.poll() == [b"new"]


def test_tailer_finishes_a_rotated_file_then_reads_the_new_one(tmp_path):
    path = write(tmp_path / "node.log", "one\n")
    tailer = logview.Tailer(path)
    assert tailer.poll() == [b"one"]
    write(path, "two\n", mode="a")
    os.rename(path, tmp_path / "node.2023-11-14.log")  # loguru's rotation: rename, then a new file
    write(path, "three\n")
    assert tailer.poll() == [b"two", b"three"]
    write(path, "four\n", mode="a")
    assert tailer.poll() == [b"four"]


def test_follow_prints_the_history_then_appended_records(tmp_path):
    a = write(tmp_path / "a" / "node.log", rec(T + 1, "first", node="a", event="One"))
    b = write(tmp_path / "b" / "node.log", rec(T, "zeroth", node="b", event="Zero"))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "logview.py"), "--follow", "--interval", "0.02",
         "--node", "a,b", str(tmp_path / "a"), str(b)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tool_env(), cwd=tmp_path,
        preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        lines = LineReader(proc.stdout)
        assert lines.next(10).split()[4] == "Zero"
        assert lines.next(10).split()[4] == "One"
        write(a, rec(T + 2, "appended", node="a", event="Two"), "garbage\n", mode="a")
        assert lines.next(10).split()[4] == "Two"
        half = rec(T + 3, "in two writes", node="b", event="Three")
        write(b, half[:20], mode="a")
        write(b, half[20:], mode="a")
        assert lines.next(10).split()[4] == "Three"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr.read() == f"logview: skipped 1 malformed line ({a}: 1)\n"
    finally:
        proc.kill()
        proc.wait(10)
