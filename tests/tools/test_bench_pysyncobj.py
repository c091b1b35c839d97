"""tools/bench.py --target pysyncobj: option checks, the node harness's imports and
protocol, the table note, and real runs.

PySyncObj is not a dependency of abcd.  Most tests here need none: they use a missing
or crippled interpreter, or a stand-in `pysyncobj` package written for the test (one
thread that applies calls in order) that lets the harness and the run path be exercised
end to end.  The runs against real PySyncObj are marked slow and need
ABCD_PYSYNCOBJ_PYTHON naming an interpreter that has pysyncobj, e.g.

    ABCD_PYSYNCOBJ_PYTHON=venv-psync/bin/python python -m pytest -m slow tests/tools/test_bench_pysyncobj.py
"""
from __future__ import annotations

import ast
import json
import os
import signal
import stat
import select
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from benchlib.cli import main as bench_main  # noqa: E402
from benchlib.options import OptionsError, parse_options  # noqa: E402
from benchlib.report import FORMAT, load_series, table  # noqa: E402
from benchlib.stats import median_over_reps  # noqa: E402
from bench_processes import alive, interrupt_and_expect_clean_exit  # noqa: E402
from tools_helpers import ctrl_c_as_at_a_terminal  # noqa: E402

BENCH = REPO / "tools" / "bench.py"
NODE_SCRIPT = REPO / "tools" / "benchlib" / "pysyncobj_node.py"
SETUP_HINT = "python3 -m venv venv-psync && venv-psync/bin/pip install pysyncobj"
REAL_PYTHON = os.environ.get("ABCD_PYSYNCOBJ_PYTHON")

# A stand-in for pysyncobj with the few names the harness uses.  Each node names the
# lowest address as leader, so all agree; calls are applied in order by one thread,
# which then runs their callbacks, as PySyncObj's tick thread does.
FAKE_PYSYNCOBJ = '''
import queue
import threading

VERSION = "0.0-test"


class FAIL_REASON:
    SUCCESS = 0
    QUEUE_FULL = 1
    DISCARDED = 3


class SyncObjConf:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def replicated(func):
    def call(self, *args, callback=None):
        self._calls.put((func, args, callback))
    return call


class SyncObj:
    def __init__(self, self_address, partners, conf):
        if conf.kwargs.get("appendEntriesUseBatch") is not False:
            raise ValueError("appends must not be batched (appendEntriesUseBatch=False)")
        self._address = self_address
        self._partners = list(partners)
        self._calls = queue.Queue()
        self._thread = threading.Thread(target=self._apply)
        self._thread.start()

    def _apply(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            func, args, callback = item
            func(self, *args)
            if callback is not None:
                callback(None, FAIL_REASON.SUCCESS)

    def waitBinded(self):
        pass

    def isReady(self):
        return True

    def getStatus(self):
        leader = min([self._address] + self._partners)
        status = {"state": 2 if leader == self._address else 0, "leader": leader, "has_quorum": True}
        for p in self._partners:
            status["partner_node_status_server_" + p] = 2
        return status

    def destroy(self):
        self._calls.put(None)
'''


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fake_python(tmp_path) -> str:
    """An interpreter whose `import pysyncobj` finds the stand-in package."""
    package = tmp_path / "site" / "pysyncobj"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_PYSYNCOBJ)
    (package / "version.py").write_text("VERSION = '0.0-test'\n")
    return _script(tmp_path / "python-with-fake", f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}" '
                                                  f'exec "{sys.executable}" "$@"\n')


@pytest.fixture
def python_without_pysyncobj(tmp_path) -> str:
    """A real interpreter that sees only the standard library (-I: no PYTHONPATH, no
    user site; -S: no site-packages)."""
    return _script(tmp_path / "bare-python", f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')


def _node_pids(ready_line: str) -> list[int]:
    # "local PySyncObj V cluster of 3 ready: n1 (leader) 127.0.0.1:P pid N, n2 ... pid N, ..."
    return [int(part.split(",")[0]) for part in ready_line.split(" pid ")[1:]]


# ---------------------------------------------------------------- options

def test_pysyncobj_needs_an_interpreter_and_says_how_to_set_one_up():
    with pytest.raises(OptionsError, match="--target pysyncobj needs --pysyncobj-python") as e:
        parse_options(["--target", "pysyncobj"])
    assert SETUP_HINT in str(e.value) and "not a dependency of abcd" in str(e.value)


def test_an_interpreter_without_pysyncobj_is_refused_with_the_setup_hint(python_without_pysyncobj):
    with pytest.raises(OptionsError, match="cannot import pysyncobj") as e:
        parse_options(["--target", "pysyncobj", "--pysyncobj-python", python_without_pysyncobj])
    assert SETUP_HINT in str(e.value) and "ModuleNotFoundError" in str(e.value)


def test_a_path_that_is_no_interpreter_is_refused(tmp_path):
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    for path in (str(tmp_path / "missing" / "python"), str(not_executable)):
        with pytest.raises(OptionsError, match="is not an executable file") as e:
            parse_options(["--target", "pysyncobj", "--pysyncobj-python", path])
        assert SETUP_HINT in str(e.value)


@pytest.mark.parametrize("op", ["get", "get-serializable", "mix"])
def test_only_puts_are_supported(fake_python, op):
    with pytest.raises(OptionsError, match=f"supports only --op put .*not {op}"):
        parse_options(["--target", "pysyncobj", "--pysyncobj-python", fake_python, "--op", op])


@pytest.mark.parametrize("extra, option", [
    (["--endpoints", "127.0.0.1:1"], "--endpoints"),
    (["--http"], "--http"),
    (["--spread"], "--spread"),
    (["--conns", "2"], "--conns"),
    (["--procs", "2"], "--procs"),
])
def test_options_that_do_not_apply_are_refused(fake_python, extra, option):
    with pytest.raises(OptionsError, match=f"{option} does not apply to --target pysyncobj"):
        parse_options(["--target", "pysyncobj", "--pysyncobj-python", fake_python, *extra])


def test_the_interpreter_option_belongs_to_the_pysyncobj_target(fake_python):
    with pytest.raises(OptionsError, match="--pysyncobj-python is for --target pysyncobj"):
        parse_options(["--pysyncobj-python", fake_python])


def test_a_usable_interpreter_gives_the_label_and_records_the_version(fake_python):
    o = parse_options(["--target", "pysyncobj", "--pysyncobj-python", fake_python, "--concurrency", "1,64"])
    assert (o.target, o.client, o.label, o.nodes, o.concurrency) == ("pysyncobj", "in-process", "pysyncobj", 3,
                                                                     (1, 64))
    assert o.pysyncobj_version == "0.0-test" and o.config()["pysyncobj_version"] == "0.0-test"
    assert "pysyncobj_version" not in parse_options([]).config()  # other targets' files are unchanged


def test_the_command_line_exits_2_with_the_hint(capsys, python_without_pysyncobj):
    assert bench_main(["--target", "pysyncobj", "--pysyncobj-python", python_without_pysyncobj]) == 2
    err = capsys.readouterr().err
    assert "usage: bench.py" in err and "cannot import pysyncobj" in err and SETUP_HINT in err


def test_compare_needs_no_interpreter(tmp_path, capsys):
    path = _result_file(tmp_path / "p.json", "pysyncobj", "pysyncobj")
    assert bench_main(["--target", "pysyncobj", "--compare", path]) == 0
    assert "pysyncobj" in capsys.readouterr().out


# ---------------------------------------------------------------- the node harness

def test_the_node_harness_imports_only_the_standard_library_and_pysyncobj():
    tree = ast.parse(NODE_SCRIPT.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the node harness"
            imported.add(node.module.split(".")[0])
    foreign = {m for m in imported if m not in sys.stdlib_module_names and m != "pysyncobj"}
    assert not foreign, f"the node harness imports {sorted(foreign)}"
    assert "pysyncobj" in imported


def test_the_node_answers_its_protocol_and_stops_at_end_of_input(fake_python):
    proc = subprocess.Popen([fake_python, str(NODE_SCRIPT), "--self", "127.0.0.1:1", "--partner", "127.0.0.1:2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    commands = [
        {"id": 1, "cmd": "status"},
        {"id": 2, "cmd": "run", "concurrency": 3, "warmup": 0.0, "duration": 0.3, "keys": 20, "key_size": 4,
         "value_size": 10, "seed": 1},
        {"id": 3, "cmd": "collect", "timeout": 10},
        {"id": 4, "cmd": "bogus"},
    ]
    try:
        out, err = proc.communicate("".join(json.dumps(c) + "\n" for c in commands), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    bound, status, window, result, bogus = [json.loads(line) for line in out.splitlines()]
    assert bound["event"] == "bound" and bound["pid"] == proc.pid
    assert status == {"id": 1, "state": "leader", "leader": "127.0.0.1:1", "ready": True, "quorum": True,
                      "connected": 1}
    assert window["measure_from"] == window["start"]
    assert window["measure_until"] - window["measure_from"] == pytest.approx(0.3)
    assert result["in_flight"] == 0 and result["errors"] == {} and result["latencies"]
    assert bogus["id"] == 4 and "unknown command" in bogus["error"]


@pytest.mark.integration
def test_a_run_on_the_stand_in_fills_the_same_table_and_file(tmp_path, fake_python):
    out = tmp_path / "out.json"
    result = _run_bench("--target", "pysyncobj", "--pysyncobj-python", fake_python, "--concurrency", "1,4",
                        "--duration", "0.5", "--warmup", "0.2", "--reps", "1", "--keys", "50", "--json", str(out),
                        tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "never fsyncs" in result.stderr  # said before the run
    doc = json.loads(out.read_text())
    assert doc["format"] == FORMAT and doc["config"]["pysyncobj_version"] == "0.0-test"
    (series,) = doc["series"]
    assert (series["label"], series["target"], series["client"]) == ("pysyncobj", "pysyncobj", "in-process")
    assert [r["concurrency"] for r in series["rows"]] == [1, 4]
    leader = [m["name"] for m in series["members"] if m["leader"]]
    assert leader == [min(series["members"], key=lambda m: m["address"])["name"]]  # the stand-in's choice
    for row in series["rows"]:
        (rep,) = row["reps"]
        assert rep["ops"] > 0 and rep["errors"] == 0
        assert 0 < rep["p50_ms"] <= rep["p90_ms"] <= rep["p99_ms"] <= rep["max_ms"]
        assert set(rep["cpu"]["servers"]) == {"n1", "n2", "n3"} and rep["cpu"]["client"] == {}
        assert rep["leader"] == leader[0]
    assert "pysyncobj" in result.stdout and "p99 ms" in result.stdout and "never fsyncs" in result.stdout
    assert not [m["pid"] for m in series["members"] if alive(m["pid"])]
    assert not list(tmp_path.glob("abcd-bench-pysyncobj-*")), "the nodes' logs were not removed"


# ---------------------------------------------------------------- report

def _rep(ops):
    return {"ops_per_s": ops, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "max_ms": 4.0, "errors": 0,
            "leader": "n1", "cpu": {"client": {}, "servers": {"n1": 40.0, "n2": 20.0, "n3": 19.0},
                                    "machine_busy": 50.0, "others_busy": 2.0}}


def _result_file(path, label, target):
    reps = [_rep(1000)]
    series = {"label": label, "target": target, "client": "in-process" if target == "pysyncobj" else "session",
              "workload": {"op": "put", "keys": 10},
              "rows": [{"concurrency": 1, "median": median_over_reps(reps), "reps": reps}]}
    path.write_text(json.dumps({"format": FORMAT, "series": [series]}))
    return str(path)


def test_compare_merges_pysyncobj_with_the_others_and_keeps_the_caveat(tmp_path):
    a = _result_file(tmp_path / "a.json", "abcd session", "abcd")
    p = _result_file(tmp_path / "p.json", "pysyncobj", "pysyncobj")
    text = table(load_series([a, p]))
    lines = text.splitlines()
    assert lines[2].startswith("abcd session") and lines[3].startswith("pysyncobj")
    assert "40 / 20 19" in lines[3] and " – " in lines[3]  # no client process: its CPU is unknown
    assert "pysyncobj: PySyncObj keeps its log in memory and never fsyncs (not durable)" in text
    assert "never fsyncs" not in table(load_series([a]))


# ---------------------------------------------------------------- real PySyncObj (slow)

def _run_bench(*args, tmp_path: Path, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TMPDIR"] = str(tmp_path)  # where the nodes' logs go while it runs
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO.parent)


needs_pysyncobj = pytest.mark.skipif(not REAL_PYTHON, reason="set ABCD_PYSYNCOBJ_PYTHON to an interpreter "
                                                            "that has pysyncobj")


@pytest.mark.slow
@needs_pysyncobj
def test_a_short_run_against_pysyncobj(tmp_path):
    out = tmp_path / "out.json"
    result = _run_bench("--target", "pysyncobj", "--pysyncobj-python", REAL_PYTHON, "--concurrency", "1,8",
                        "--duration", "1", "--warmup", "0.3", "--reps", "1", "--json", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    (series,) = json.loads(out.read_text())["series"]
    assert len(series["members"]) == 3 and sum(m["leader"] for m in series["members"]) == 1
    for row in series["rows"]:
        (rep,) = row["reps"]
        assert rep["ops"] > 0 and rep["errors"] == 0, rep["error_samples"]
        assert 0 < rep["p50_ms"] <= rep["p90_ms"] <= rep["p99_ms"] <= rep["max_ms"]
        assert set(rep["cpu"]["servers"]) == {"n1", "n2", "n3"}
    merged = subprocess.run([sys.executable, str(BENCH), "--compare", str(out)], capture_output=True, text=True,
                            timeout=60)
    assert merged.returncode == 0 and "pysyncobj" in merged.stdout
    assert not [m["pid"] for m in series["members"] if alive(m["pid"])]


@pytest.mark.slow
@needs_pysyncobj
def test_interrupting_a_pysyncobj_run_stops_every_node(tmp_path):
    _interrupt_and_check(REAL_PYTHON, tmp_path)


# ---------------------------------------------------------------- no orphans

def _start_long_run(python: str, tmp_path: Path):
    """bench.py on a long run, and the node pids from its "ready" line; its temporary
    files go under tmp_path (a killed run cannot remove them)."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(BENCH), "--target", "pysyncobj", "--pysyncobj-python", python,
                             "--concurrency", "1", "--duration", "30", "--warmup", "0", "--reps", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ctrl_c_as_at_a_terminal)
    ready = proc.stderr.readline()
    if "ready" not in ready:
        proc.kill()
        raise AssertionError(ready + proc.stderr.read())
    pids = _node_pids(ready)
    assert len(pids) == 3 and all(alive(p) for p in pids)
    return proc, pids


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait (event-driven, through pidfds) until the processes have exited; those still alive."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            pass
    try:
        for fd in fds:
            select.select([fd], [], [], timeout)  # readable once the process has exited
    finally:
        for fd in fds:
            os.close(fd)
    return [p for p in pids if alive(p)]


def _interrupt_and_check(python: str, tmp_path: Path) -> None:
    proc, pids = _start_long_run(python, tmp_path)
    interrupt_and_expect_clean_exit(proc, pids)
    assert not list(tmp_path.glob("abcd-bench-pysyncobj-*")), "the nodes' logs were not removed"


@pytest.mark.integration
def test_interrupting_a_run_stops_every_node(fake_python, tmp_path):
    _interrupt_and_check(fake_python, tmp_path)


@pytest.mark.integration
def test_nodes_do_not_outlive_a_killed_bench(fake_python, tmp_path):
    proc, pids = _start_long_run(fake_python, tmp_path)
    try:
        proc.kill()  # no clean-up at all: the kernel's parent-death signal and the closed pipes remain
        proc.wait(10)
        assert not _wait_gone(pids, timeout=15)
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

