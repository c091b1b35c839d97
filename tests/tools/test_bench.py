"""tools/bench.py: option parsing, result math, the client loops against small fake
servers, and (integration) short real runs against a local cluster.

Benchmarks are tools, not timed tests: nothing here asserts on speed.
"""
from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from benchlib import etcd_native, plot  # noqa: E402
from benchlib.cli import main as bench_main  # noqa: E402
from benchlib.drivers import HttpDriver, Recorder, SessionDriver, Window  # noqa: E402
from benchlib.options import OptionsError, parse_options  # noqa: E402
from benchlib.procstat import CpuMeter, CpuSnapshot, parse_stat_cpu_seconds, process_cpu_seconds  # noqa: E402
from benchlib.report import FORMAT, Progress, load_series, table  # noqa: E402
from benchlib.runner import plan_tasks  # noqa: E402
from benchlib.stats import (median_or_none, median_over_reps, percentile, split_evenly,  # noqa: E402
                            summarize_latencies)
from benchlib.workload import Workload, WorkloadSpec  # noqa: E402
from bench_processes import alive, interrupt_and_expect_clean_exit  # noqa: E402
from tools_helpers import ctrl_c_as_at_a_terminal  # noqa: E402

BENCH = REPO / "tools" / "bench.py"


# ---------------------------------------------------------------- result math

def test_percentile_is_nearest_rank_so_every_figure_was_observed():
    samples = list(range(1, 101))  # 1..100
    assert percentile(samples, 50) == 50
    assert percentile(samples, 90) == 90
    assert percentile(samples, 99) == 99
    assert percentile(samples, 99.5) == 100
    assert percentile(samples, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2  # not the interpolated 2.5
    assert percentile([], 50) is None


def test_percentile_rejects_a_percentage_out_of_range():
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1, 2], 101)


def test_summary_converts_to_ms_and_divides_by_the_window():
    summary = summarize_latencies([0.003, 0.001, 0.002, 0.010], duration_s=2.0)
    assert summary["ops"] == 4
    assert summary["ops_per_s"] == 2.0
    assert summary["p50_ms"] == pytest.approx(2.0)
    assert summary["p99_ms"] == pytest.approx(10.0)
    assert summary["max_ms"] == pytest.approx(10.0)
    empty = summarize_latencies([], 1.0)
    assert empty["ops_per_s"] == 0 and empty["p99_ms"] is None


def test_median_over_reps_takes_each_figure_and_each_process_on_its_own():
    reps = [
        {"ops_per_s": 100, "p50_ms": 1.0, "p90_ms": None, "p99_ms": 9.0, "max_ms": 20, "errors": 0, "leader": "n1",
         "cpu": {"client": {"client1": 10}, "servers": {"n1": 50, "n2": 20}, "machine_busy": 40, "others_busy": 5}},
        {"ops_per_s": 300, "p50_ms": 3.0, "p90_ms": None, "p99_ms": 5.0, "max_ms": 10, "errors": 2, "leader": "n1",
         "cpu": {"client": {"client1": 30}, "servers": {"n1": 70, "n2": 40}, "machine_busy": 60, "others_busy": 1}},
        {"ops_per_s": 200, "p50_ms": 2.0, "p90_ms": None, "p99_ms": 7.0, "max_ms": 30, "errors": 1, "leader": "n2",
         "cpu": {"client": {"client1": 20}, "servers": {"n1": 60, "n2": 30, "n3": 5}, "machine_busy": 50, "others_busy": 9}},
    ]
    m = median_over_reps(reps)
    assert (m["ops_per_s"], m["p50_ms"], m["p99_ms"], m["max_ms"], m["errors"]) == (200, 2.0, 7.0, 20, 1)
    assert m["p90_ms"] is None  # unknown in every rep stays unknown
    assert m["cpu"]["servers"] == {"n1": 60, "n2": 30, "n3": 5}
    assert m["cpu"]["client"] == {"client1": 20} and m["cpu"]["machine_busy"] == 50
    assert m["cpu"]["others_busy"] == 5
    assert m["leader"] == "n1"  # the leader most reps saw
    # By role, each rep against its own leader (n2 led the third): leaders 50, 70, 30;
    # busiest followers 20, 40, 60; second busiest only in the third rep, 5.
    assert m["cpu"]["by_role"] == {"leader": 50, "followers": [40, 5]}


def test_median_of_an_even_count_and_of_nothing():
    assert median_or_none([4, None, 1, 3, 2]) == 2.5
    assert median_or_none([None]) is None
    with pytest.raises(ValueError, match="no repetitions"):
        median_over_reps([])


def test_split_evenly():
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(1, 2) == [1, 0]
    assert sum(split_evenly(256, 7)) == 256
    with pytest.raises(ValueError):
        split_evenly(3, 0)


# ---------------------------------------------------------------- options

def test_defaults_describe_the_reference_benchmark():
    o = parse_options([])
    assert (o.target, o.client, o.nodes, o.concurrency) == ("abcd", "session", 3, (1, 16, 64, 256))
    assert (o.key_size, o.value_size, o.op, o.endpoints) == (16, 100, "put", ())
    assert o.label == "abcd session"


def test_options_choose_the_client_and_label():
    assert parse_options(["--http"]).label == "abcd http"
    etcd = parse_options(["--target", "etcd", "--endpoints", "127.0.0.1:23791,127.0.0.1:23792"])
    assert (etcd.client, etcd.endpoints) == ("gateway", ("127.0.0.1:23791", "127.0.0.1:23792"))
    native = parse_options(["--target", "etcd", "--endpoints", "127.0.0.1:1", "--etcdbench", sys.executable,
                            "--op", "get-serializable"])
    assert (native.client, native.label) == ("native", "etcd native get-serializable")
    assert parse_options(["--concurrency", " 1, 8 "]).concurrency == (1, 8)
    assert parse_options(["--token", "t0k"]).token == "t0k"  # a cluster with auth on


@pytest.mark.parametrize("argv, message", [
    (["--concurrency", "1,x"], "'x' is not a whole number"),
    (["--concurrency", "0"], "at least 1"),
    (["--concurrency", "4,4"], "repeats a level"),
    (["--nodes", "4"], "--nodes must be 1, 3 or 5"),
    (["--duration", "0"], "--duration must be positive"),
    (["--read-ratio", "1.5"], "--read-ratio must be between 0 and 1"),
    (["--keys", "100000", "--key-size", "4"], "too short for --keys 100000 \\(keys need 5 digits\\)"),
    (["--key-size", "2000"], "--key-size must be between 1 and 1024"),
    (["--target", "etcd"], "needs --endpoints"),
    (["--target", "etcd", "--endpoints", "127.0.0.1:1", "--http"], "--http is for abcd"),
    (["--target", "etcd", "--endpoints", "127.0.0.1:1", "--etcdbench", "/nonexistent/etcdbench"],
     "not an executable"),
    (["--etcdbench", sys.executable], "--etcdbench is for --target etcd"),
    (["--endpoints", "localhost"], "'localhost' is not HOST:PORT"),
    (["--plot", "out.svg"], "should end in .png"),
    (["--target", "etcd", "--endpoints", "127.0.0.1:1", "--token", "t"], "--token is for abcd"),
])
def test_bad_options_say_what_was_wrong(argv, message):
    with pytest.raises(OptionsError, match=message):
        parse_options(argv)


def test_the_command_line_exits_2_with_the_reason(capsys):
    assert bench_main(["--concurrency", "1,,2"]) == 2
    err = capsys.readouterr().err
    assert "usage: bench.py" in err and "--concurrency: '' is not a whole number" in err


# ---------------------------------------------------------------- planning and workload

def _opts(*argv):
    return parse_options(list(argv))


def test_plan_puts_every_client_somewhere_and_idles_spare_processes():
    tasks = plan_tasks(_opts("--procs", "2"), 1, lambda i: "L")
    assert tasks[1] is None and tasks[0].connections == (("L", 1),)
    tasks = plan_tasks(_opts("--procs", "2", "--conns", "4"), 256, lambda i: f"m{i % 3}")
    conns = [c for t in tasks for c in t.connections]
    assert [n for _, n in conns] == [64, 64, 64, 64]
    assert [e for e, _ in conns] == ["m0", "m1", "m2", "m0"]
    assert len(tasks[0].connections) == len(tasks[1].connections) == 2
    assert {t.seed for t in tasks} == {1, 2}  # different random streams per process


def test_plan_for_plain_http_has_one_connection_per_client():
    tasks = plan_tasks(_opts("--http", "--procs", "2"), 5, lambda i: "L")
    assert [len(t.connections) for t in tasks] == [3, 2]
    assert all(n == 1 for t in tasks for _, n in t.connections)


def test_workload_keys_values_and_mix():
    spec = WorkloadSpec("mix", 0.25, keys=50, key_size=16, value_size=100)
    w = Workload(spec, seed=3)
    ops = [w.next() for _ in range(4000)]
    assert all(len(key) == 16 and key.isdigit() and int(key) < 50 for _, key, _ in ops)
    puts = [arg for kind, _, arg in ops if kind == "put"]
    gets = [arg for kind, _, arg in ops if kind == "get"]
    assert all(len(v) == 100 for v in puts) and len(set(puts)) > 50  # random, fixed size
    assert gets and all(arg is False for arg in gets)  # mix reads are linearizable
    assert 0.2 < len(gets) / len(ops) < 0.3
    only_reads = Workload(WorkloadSpec("get-serializable", 0.5, 10, 16, 100), seed=1)
    assert {only_reads.next()[::2] for _ in range(100)} == {("get", True)}
    only_puts = Workload(WorkloadSpec("put", 0.5, 10, 16, 100), seed=1)
    assert {only_puts.next()[0] for _ in range(100)} == {"put"}


# ---------------------------------------------------------------- /proc and etcdbench parsing

def test_stat_parsing_counts_fields_after_the_last_parenthesis():
    ticks = os.sysconf("SC_CLK_TCK")
    raw = b"42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 " + f"{3 * ticks} {ticks} 0 0 20 0 1".encode()
    assert parse_stat_cpu_seconds(raw) == pytest.approx(4.0)
    assert process_cpu_seconds(os.getpid()) > 0
    assert process_cpu_seconds(2 ** 22 + 12345) is None  # no such process


def test_cpu_percent_is_of_one_core_over_the_window():
    before = CpuSnapshot(10.0, {"a": 1.0, "gone": 1.0}, (100, 1000))
    after = CpuSnapshot(12.0, {"a": 2.5, "gone": None}, (400, 1400))
    cpu = CpuMeter.percent(before, after)
    assert cpu == {"processes": {"a": 75.0, "gone": None}, "machine_busy": 75.0}


def test_etcdbench_result_line():
    out = ("connecting\nRESULT tool=go op=put clients=16 conns=16 ops=20000 secs=10.00 ops_s=2000 "
           "p50_ms=7.50 p99_ms=21.00 max_ms=40.10 errors=3\n")
    r = etcd_native.parse_result_line(out)
    assert (r["ops"], r["ops_per_s"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["errors"]) == \
        (20000, 2000.0, 7.5, None, 21.0, 3)
    with pytest.raises(etcd_native.EtcdbenchError, match="no RESULT line"):
        etcd_native.parse_result_line("no ops\n")
    cmd = etcd_native.command("eb", "h:1", 256, None, 5.0, "get-serializable", 16, 100, 1000)
    assert cmd[cmd.index("-conns") + 1] == "16" and cmd[cmd.index("-op") + 1] == "range"
    assert "-serializable" in cmd and cmd[cmd.index("-duration") + 1] == "5.0s"


# ---------------------------------------------------------------- report

def _rep(ops, p99, leader="n1"):
    return {"ops": ops, "ops_per_s": ops, "p50_ms": 1.0, "p90_ms": None, "p99_ms": p99, "max_ms": 9.0,
            "errors": 0, "leader": leader, "client_bound": False,
            "cpu": {"client": {"client1": 12.0}, "servers": {"n1": 80.0, "n2": 30.0, "n3": 31.0},
                    "machine_busy": 70.0, "others_busy": 3.0}}


def _result_file(path, label, reps_by_c, op="put"):
    series = {"label": label, "target": "abcd", "client": "session",
              "workload": {"op": op, "keys": 10},
              "rows": [{"concurrency": c, "median": median_over_reps(r), "reps": r} for c, r in reps_by_c.items()]}
    path.write_text(json.dumps({"format": FORMAT, "series": [series]}))
    return str(path)


def test_separate_runs_pool_their_repetitions(tmp_path):
    a = _result_file(tmp_path / "a.json", "abcd session", {1: [_rep(100, 5.0)], 16: [_rep(900, 9.0)]})
    b = _result_file(tmp_path / "b.json", "abcd session", {1: [_rep(300, 3.0)]})
    c = _result_file(tmp_path / "c.json", "abcd session", {1: [_rep(200, 4.0)]})
    e = _result_file(tmp_path / "e.json", "etcd native", {1: [_rep(50, 1.0)]})
    series = load_series([a, b, c, e])
    assert [s["label"] for s in series] == ["abcd session", "etcd native"]
    row1 = series[0]["rows"][0]
    assert len(row1["reps"]) == 3 and row1["median"]["ops_per_s"] == 200 and row1["median"]["p99_ms"] == 4.0
    assert series[0]["rows"][1]["concurrency"] == 16


def test_pooling_refuses_different_workloads_under_one_label(tmp_path):
    a = _result_file(tmp_path / "a.json", "abcd session", {1: [_rep(100, 5.0)]})
    b = _result_file(tmp_path / "b.json", "abcd session", {1: [_rep(100, 5.0)]}, op="get")
    with pytest.raises(ValueError, match="different workloads"):
        load_series([a, b])
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a bench.py result file"):
        load_series([str(tmp_path / "x.json")])


def test_table_is_aligned_and_marks_the_leader(tmp_path):
    path = _result_file(tmp_path / "a.json", "abcd session", {1: [_rep(1234, 5.0)], 256: [_rep(45678, 19.5)]})
    lines = table(load_series([path])).splitlines()
    header, rule, first, second = lines[:4]
    assert header.index("ops/s") + len("ops/s") == first.index("1,234") + len("1,234")
    assert second.index("45,678") + len("45,678") == first.index("1,234") + len("1,234")
    assert "80 / 31 30" in first  # leader first, then followers, busiest first
    assert " – " in first  # p90 unknown
    assert first.endswith("70 (3)")  # machine busy, of which others
    assert set(rule.replace(" ", "")) == {"-"}


def test_progress_redraws_on_a_terminal_and_keeps_only_milestones_otherwise():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, log = Tty(), io.StringIO()
    for stream in (tty, log):
        p = Progress(stream)
        p.update("c=1 warm-up 0.5/2s")
        p.update("c=1 measuring")
        p.done("c=1: 100 ops/s")
    assert tty.getvalue().startswith("\rc=1 warm-up 0.5/2s\rc=1 measuring")
    assert tty.getvalue().endswith("c=1: 100 ops/s\n")
    assert log.getvalue() == "c=1: 100 ops/s\n"


def test_compare_without_matplotlib_still_prints_the_table(tmp_path, capsys, monkeypatch):
    path = _result_file(tmp_path / "a.json", "abcd session", {1: [_rep(100, 5.0)]})
    monkeypatch.setattr(plot, "available", lambda: False)
    assert bench_main(["--compare", path, "--plot", str(tmp_path / "p.png")]) == 0
    out, err = capsys.readouterr()
    assert "abcd session" in out and "needs matplotlib" in err
    assert not (tmp_path / "p.png").exists()


# ---------------------------------------------------------------- client loops against fake servers

def _window(seconds):
    now = time.monotonic()
    return Window(now, now, now + seconds)


async def _serve(app):
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"127.0.0.1:{runner.addresses[0][1]}"



def _drive(app, make_driver) -> Recorder:
    """Serve `app` on loopback, run the driver `make_driver(address, recorder)` against it
    for a 0.3 s window, and return the recorder."""

    async def scenario():
        runner, address = await _serve(app)
        try:
            rec = Recorder(_window(0.3))
            driver = make_driver(address, rec)
            await driver.connect()
            await driver.run()
            await driver.close()
            return rec
        finally:
            await runner.cleanup()

    return asyncio.run(scenario())

def test_etcd_gateway_driver_sends_base64_keys_and_fixed_size_values():
    seen = []

    async def put(request):
        seen.append(await request.json())
        return web.json_response({"header": {}})

    app = web.Application()
    app.router.add_post("/v3/kv/put", put)
    rec = _drive(app, lambda address, rec: HttpDriver(
        "etcd", [address] * 3, Workload(WorkloadSpec("put", 0, 100, 16, 100), 1), rec))
    assert len(rec.latencies) > 0 and not rec.errors
    keys = {base64.b64decode(b["key"]).decode() for b in seen}
    assert all(len(k) == 16 and k.isdigit() for k in keys)
    assert {len(base64.b64decode(b["value"])) for b in seen} == {100}


def test_session_driver_keeps_requests_in_flight_and_counts_errors():
    frames = []

    async def session(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            batch = json.loads(message.data)
            frames.append(len(batch))
            answers = []
            for item in batch:
                if item["op"] == "get":  # a missing key is a normal answer to a read
                    answers.append({"id": item["id"], "status": 404, "body": {"error": "no key", "code": "not_found"}})
                elif item["id"] % 5 == 0:
                    answers.append({"id": item["id"], "status": 503, "body": {"error": "no leader", "code": "x"}})
                else:
                    answers.append({"id": item["id"], "status": 200, "body": {"revision": 1, "prev_kv": None}})
            await ws.send_str(json.dumps(answers))
        return ws

    app = web.Application()
    app.router.add_get("/v1/session", session)
    rec = _drive(app, lambda address, rec: SessionDriver(
        address, 8, Workload(WorkloadSpec("mix", 0.5, 100, 16, 100), 1), rec))
    assert frames[0] == 8  # all clients' first requests in one frame
    assert max(frames) <= 8  # never more than 8 in flight
    assert rec.errors["503"] > 0 and set(rec.errors) == {"503"}
    assert rec.error_samples[0].startswith("503: x no leader")
    assert len(rec.latencies) > rec.errors["503"]  # puts that succeeded and reads of missing keys


def test_session_driver_times_a_request_from_when_it_is_sent_not_from_its_own_bookkeeping():
    # Drawing the next operation stands for the driver's work between an answer and the
    # next request; that is not the next request's latency (etcdbench starts its clock
    # right before Put).  Each draw takes 50 ms here; the echo server answers at once.
    class SlowWorkload(Workload):
        def next(self):
            time.sleep(0.05)
            return super().next()

    async def session(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(json.dumps([{"id": r["id"], "status": 200, "body": {}} for r in json.loads(message.data)]))
        return ws

    app = web.Application()
    app.router.add_get("/v1/session", session)
    rec = _drive(app, lambda address, rec: SessionDriver(
        address, 1, SlowWorkload(WorkloadSpec("put", 0, 100, 16, 100), 1), rec))
    assert len(rec.latencies) >= 2 and not rec.errors
    assert statistics.median(rec.latencies) < 0.025, list(rec.latencies)


# ---------------------------------------------------------------- real runs (integration)

def _run_bench(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO.parent)


@pytest.mark.integration
def test_short_run_writes_results_and_leaves_no_node_behind(tmp_path):
    out = tmp_path / "out.json"
    result = _run_bench("--nodes", "3", "--concurrency", "1,4", "--duration", "1", "--warmup", "0.3",
                        "--reps", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["format"] == FORMAT and doc["config"]["concurrency"] == [1, 4]
    (series,) = doc["series"]
    assert series["label"] == "abcd session"
    assert [r["concurrency"] for r in series["rows"]] == [1, 4]
    for row in series["rows"]:
        (rep,) = row["reps"]
        assert rep["ops"] > 0 and rep["ops_per_s"] > 0
        assert 0 < rep["p50_ms"] <= rep["p90_ms"] <= rep["p99_ms"] <= rep["max_ms"]
        assert set(rep["cpu"]["servers"]) == {"n1", "n2", "n3"} and set(rep["cpu"]["client"]) == {"client1"}
        assert row["median"]["ops_per_s"] == rep["ops_per_s"]
        assert 0 <= rep["cpu"]["others_busy"] <= rep["cpu"]["machine_busy"] <= 100
    assert len(series["members"]) == 3 and sum(m["leader"] for m in series["members"]) == 1
    assert "abcd session" in result.stdout and "p99 ms" in result.stdout
    assert not [m["pid"] for m in series["members"] if alive(m["pid"])]


@pytest.mark.integration
def test_plain_http_mix_of_reads_and_writes(tmp_path):
    out = tmp_path / "out.json"
    result = _run_bench("--nodes", "1", "--http", "--op", "mix", "--keys", "50", "--concurrency", "4",
                        "--duration", "0.5", "--warmup", "0.2", "--reps", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    (series,) = json.loads(out.read_text())["series"]
    assert series["label"] == "abcd http mix"
    (rep,) = series["rows"][0]["reps"]
    assert rep["ops"] > 0 and rep["errors"] == 0, rep["error_samples"]


@pytest.mark.integration
@pytest.mark.parametrize("client, label", [((), "abcd session tls"), (("--http",), "abcd http tls")])
def test_tls_runs_the_local_cluster_and_the_clients_over_tls(tmp_path, client, label):
    out = tmp_path / "out.json"
    result = _run_bench("--nodes", "1", "--tls", *client, "--concurrency", "4", "--duration", "0.5",
                        "--warmup", "0.2", "--reps", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["tls"] is True
    (series,) = doc["series"]
    assert series["label"] == label
    (rep,) = series["rows"][0]["reps"]
    assert rep["ops"] > 0 and rep["errors"] == 0, rep["error_samples"]


@pytest.mark.integration
def test_interrupting_a_run_stops_every_node(tmp_path):
    out = tmp_path / "out.json"
    proc = subprocess.Popen([sys.executable, str(BENCH), "--nodes", "3", "--concurrency", "1", "--duration", "30",
                             "--warmup", "0", "--reps", "1", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        ready = proc.stderr.readline()  # "local abcd cluster of 3 ready: ... pid N, ..."
        assert "ready" in ready, ready + proc.stderr.read()
        pids = [int(p.split(",")[0]) for p in ready.split(" pid ")[1:]]
        assert len(pids) == 3 and all(alive(p) for p in pids)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    interrupt_and_expect_clean_exit(proc, pids)


def test_workers_are_forked_with_interrupts_blocked_and_the_mask_is_restored(monkeypatch):
    """A Ctrl-C landing during a fork must reach the tool once, after the fork: in
    between, Python's pending-signal flag was copied into the child and raised
    KeyboardInterrupt inside the fork's own hooks (the tool then hung at exit)."""
    import multiprocessing.process

    from benchlib import workers

    masks = []
    real_start = multiprocessing.process.BaseProcess.start

    def start(self):
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        real_start(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", start)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    pool = workers.WorkerPool(2)
    try:
        assert len(masks) == 2
        assert all({signal.SIGINT, signal.SIGTERM} <= mask for mask in masks)
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    finally:
        pool.close()
