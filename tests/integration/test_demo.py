"""`python -m abcd demo`, the README's first command: a cluster that comes back when run
again, its dashboard, and the control that stops, kills and restarts its members."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from abcd.localcluster import free_port_run, wait_for
from abcd.localcluster import http as call

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATIC_INDEX = os.path.join(REPO, "abcd", "api", "static", "index.html")
NODES = 3
START_TIMEOUT = 60  # seconds for nodes to start and elect on a busy machine


class Demo:
    """One `python -m abcd demo` process; its output goes to a file (a full pipe would stall the nodes)."""

    def __init__(self, cwd, nodes: int = NODES, extra: tuple[str, ...] = (), dashboard: int | None = None) -> None:
        # The dashboard takes the port just below the nodes' by default.
        self.dashboard = dashboard or free_port_run(nodes + 1)
        self.ports = list(range(self.dashboard + 1, self.dashboard + 1 + nodes))
        self.output_path = os.path.join(cwd, f"demo-{time.monotonic_ns()}.out")
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.output_path, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "abcd", "demo", "--nodes", str(nodes), "--base-port", str(self.ports[0]), *extra],
                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )
        self.pids_seen: set[int] = set()

    def output(self) -> str:
        with open(self.output_path) as f:
            return f.read()

    def alive(self) -> bool:
        # A demo that gave up (a node that could not start) says why: fail with that at once.
        assert self.proc.poll() is None, f"the demo exited with {self.proc.returncode}:\n{self.output()}"
        return True

    def members(self) -> dict:
        status, body = call(self.dashboard, "GET", "/demo/members")
        assert status == 200, body
        for m in body["members"]:
            if m["pid"]:
                self.pids_seen.add(m["pid"])
        return body

    def member(self, port: int) -> dict:
        return next(m for m in self.members()["members"] if m["port"] == port)

    def act(self, port, action: str):
        status, body = call(self.dashboard, "POST", f"/demo/members/{port}/{action}", timeout=30)
        if status == 200 and body["member"]["pid"]:
            self.pids_seen.add(body["member"]["pid"])
        return status, body

    def all_healthy(self) -> bool:
        return self.alive() and all(healthy(p) for p in self.ports)

    def started(self) -> bool:
        """Every node healthy and the demo said so, with its dashboard's URL."""
        return self.all_healthy() and f"abcd demo: dashboard http://127.0.0.1:{self.dashboard}/" in self.output()

    def stop(self, signum: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:  # the demo is stuck: end it and its nodes
                self.proc.kill()
                self.proc.wait()
                for pid in self.pids_seen:
                    if pid_alive(pid):
                        os.kill(pid, signal.SIGKILL)
        return self.output()


def healthy(port: int) -> bool:
    try:
        return call(port, "GET", "/healthz", timeout=1)[0] == 200
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def command_line(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def request(port: int, method: str, path: str, headers: dict) -> tuple[int, dict]:
    """(status, headers) of one call, for the CORS checks."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as reply:
        return reply.status, dict(reply.headers)


def test_a_demo_run_again_in_the_same_folder_resumes_its_cluster_and_data(tmp_path):
    first = Demo(tmp_path)
    try:
        wait_for(first.started, "the first demo's nodes to be healthy", timeout=START_TIMEOUT)
        assert call(first.ports[0], "PUT", "/v1/kv/kept", {"value": "across runs"})[0] == 200
    finally:
        out = first.stop()
    assert first.proc.returncode == 0, out
    again = Demo(tmp_path, dashboard=first.dashboard)  # the same ports
    try:
        # Every node resumes from ./abcd-data; none can be healthy before a majority is back.
        wait_for(again.started, "the resumed demo's nodes to be healthy", timeout=START_TIMEOUT)
        status, body = call(first.ports[1], "GET", "/v1/kv/kept")
        assert status == 200 and body["kv"]["value"] == "across runs"
    finally:
        out = again.stop()
    assert again.proc.returncode == 0, out
    assert "did not become healthy" not in out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A running 3-node demo shared by the control tests; each leaves every member running."""
    running = Demo(tmp_path_factory.mktemp("demo"))
    try:
        wait_for(running.started, "the demo's nodes to be healthy", timeout=START_TIMEOUT)
        yield running
    finally:
        out = running.stop()
        assert running.proc.returncode == 0, out
        # Every node the demo ran, first starts and restarts alike, ended with it.
        assert [pid for pid in running.pids_seen if pid_alive(pid)] == [], out


def all_running(demo: Demo) -> bool:
    return all(m["state"] == "running" for m in demo.members()["members"])


def test_the_demo_lists_its_members_and_serves_the_dashboard(demo):
    body = demo.members()
    assert body["slow"] is False
    assert [m["port"] for m in body["members"]] == demo.ports
    for m in body["members"]:
        assert m["state"] == "running" and m["address"] == f"127.0.0.1:{m['port']}", m
        assert m["data_dir"].endswith(os.path.join("abcd-data", f"node-{m['port']}"))
        # The nodes run with faults enabled, and let the dashboard's page call them.
        argv = command_line(m["pid"])
        assert argv[argv.index("-m") + 1: argv.index("-m") + 3] == ["abcd", str(m["port"])], argv
        assert "--enable-faults" in argv
        origin = f"http://127.0.0.1:{demo.dashboard}"
        assert argv[argv.index("--allow-origin") + 1] == origin, argv
    page = urllib.request.urlopen(f"http://127.0.0.1:{demo.dashboard}/", timeout=5).read()
    with open(STATIC_INDEX, "rb") as f:
        assert page == f.read()


def test_kill_stop_and_restart_through_the_control_api(demo):
    victim, other = demo.ports[-1], demo.ports[1]
    wait_for(lambda: call(demo.ports[0], "PUT", "/v1/kv/before", {"value": "kill"})[0] == 200, "a put before the kill")
    pid = demo.member(victim)["pid"]
    asked = time.time()
    status, body = demo.act(victim, "kill")
    assert status == 200, body
    assert body["member"]["state"] == "killed" and body["member"]["pid"] is None and body["member"]["exit_code"] == -9
    assert body["member"]["since"] >= asked
    assert not pid_alive(pid)  # SIGKILL, and the demo has reaped it
    with pytest.raises(OSError):
        call(victim, "GET", "/healthz", timeout=1)
    assert demo.member(victim)["state"] == "killed"
    for action in ("kill", "stop"):
        status, body = demo.act(victim, action)
        assert (status, body["code"]) == (409, "not_running"), body
        assert "killed" in body["error"]

    # The cluster goes on without it; the restarted node resumes its data dir and catches up.
    wait_for(lambda: call(demo.ports[0], "PUT", "/v1/kv/during", {"value": "down"})[0] == 200, "a put while it is down")
    status, body = demo.act(victim, "restart")
    assert status == 200 and body["member"]["state"] == "running" and body["member"]["pid"] not in (None, pid), body
    status, body = demo.act(victim, "restart")
    assert (status, body["code"]) == (409, "already_running"), body
    wait_for(lambda: healthy(victim), "the restarted node to be healthy", timeout=START_TIMEOUT)

    def reads_both() -> bool:
        values = [call(victim, "GET", f"/v1/kv/{key}?serializable=true", timeout=1) for key in ("before", "during")]
        return [(s, b["kv"]["value"] if s == 200 else b) for s, b in values] == [(200, "kill"), (200, "down")]

    wait_for(reads_both, "the restarted node to serve both keys from its own state", timeout=START_TIMEOUT)

    # SIGTERM: a clean stop, exit code 0.
    status, body = demo.act(other, "stop")
    assert status == 200 and body["member"]["state"] == "stopped" and body["member"]["exit_code"] == 0, body
    assert demo.act(other, "restart")[0] == 200
    wait_for(lambda: healthy(other), "the stopped node to be back", timeout=START_TIMEOUT)
    wait_for(lambda: all_running(demo) and demo.all_healthy(), "every member running", timeout=START_TIMEOUT)


def test_a_node_that_dies_on_its_own_does_not_stop_the_demo(demo):
    port = demo.ports[1]
    os.kill(demo.member(port)["pid"], signal.SIGKILL)  # not through the demo: a crash, as far as it knows
    exited = wait_for(lambda: (m := demo.member(port))["state"] == "exited" and m, "the member to show as exited")
    assert exited["exit_code"] == -9 and exited["pid"] is None
    assert demo.alive()
    assert demo.act(port, "restart")[0] == 200
    wait_for(lambda: all_running(demo) and demo.all_healthy(), "every member running", timeout=START_TIMEOUT)
    assert f"node on port {port} exited with code -9" in demo.output()


@pytest.mark.parametrize(
    "method, path, raw, status, code",
    [
        ("POST", "/demo/members/abc/kill", None, 400, "bad_request"),
        ("POST", "/demo/members/1/kill", None, 404, "member_not_found"),
        ("POST", "/demo/members/{port}/explode", None, 404, "not_found"),
        ("GET", "/demo/members/{port}/kill", None, 405, "method_not_allowed"),
        ("POST", "/demo/members/{port}/restart", None, 409, "already_running"),
        ("GET", "/demo/nothing", None, 404, "not_found"),
        ("POST", "/demo/slow", b"", 400, "bad_request"),
        ("POST", "/demo/slow", b"{slow", 400, "bad_request"),
        ("POST", "/demo/slow", b'{"slow": "yes"}', 400, "bad_request"),
        ("POST", "/demo/slow", b'{"slow": true, "nodes": 5}', 400, "bad_request"),
        ("POST", "/demo/slow", b"[true]", 400, "bad_request"),
    ],
)
def test_bad_control_requests_get_a_clear_error_and_change_nothing(demo, method, path, raw, status, code):
    before = demo.members()
    answer, body = call(demo.dashboard, method, path.format(port=demo.ports[0]), raw=raw)
    assert (answer, body["code"]) == (status, code), body
    assert body["error"]
    assert demo.members() == before


def test_the_nodes_pages_may_call_the_control_api(demo):
    node_origin = f"http://127.0.0.1:{demo.ports[1]}"
    status, headers = request(demo.dashboard, "GET", "/demo/members", {"Origin": node_origin})
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == node_origin
    # The browser's preflight before a POST from a node's page.
    preflight = {"Origin": node_origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    status, headers = request(demo.dashboard, "OPTIONS", f"/demo/members/{demo.ports[0]}/stop", preflight)
    assert status == 204 and headers.get("Access-Control-Allow-Origin") == node_origin
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert demo.member(demo.ports[0])["state"] == "running"  # a preflight does nothing
    # Any other origin gets no CORS headers: its page cannot read the answers.
    status, headers = request(demo.dashboard, "GET", "/demo/members", {"Origin": "http://127.0.0.1:1"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


def test_slow_mode_runs_the_nodes_with_long_timeouts_and_ctrl_c_stops_it(tmp_path):
    slow = Demo(tmp_path, nodes=1, extra=("--slow",))
    try:
        wait_for(slow.started, "the slow demo's node to be healthy", timeout=START_TIMEOUT)
        body = slow.members()
        assert body["slow"] is True
        argv_pid = body["members"][0]["pid"]
        argv = command_line(argv_pid)
        assert argv[argv.index("--heartbeat-ms") + 1] == "500", argv
        assert argv[argv.index("--election-timeout-ms") + 1] == "5000", argv
        assert body["members"][0]["slow"] is True
        status = call(slow.ports[0], "GET", "/v1/status")[1]
        assert status["heartbeat_ms"] == 500, status
        # A leader runs no election timer; any other member's is drawn from [T, 2T).
        timeout_ms = status["election_timeout_ms"]
        assert (status["role"] == "leader" and timeout_ms is None) or 5000 <= timeout_ms < 10000, status

        # Slow mode off: the member is restarted with the default timers, on the same data.
        assert call(slow.ports[0], "PUT", "/v1/kv/slow", {"value": "kept"})[0] == 200
        status, body = call(slow.dashboard, "POST", "/demo/slow", {"slow": False}, timeout=90)
        assert status == 200 and body["slow"] is False and body["members"][0]["slow"] is False, body
        member = body["members"][0]
        slow.pids_seen.add(member["pid"])
        assert member["state"] == "running" and member["pid"] != argv_pid, body
        argv = command_line(member["pid"])
        assert "--heartbeat-ms" not in argv and "--election-timeout-ms" not in argv, argv
        assert call(slow.ports[0], "GET", "/v1/kv/slow")[1]["kv"]["value"] == "kept"
    finally:
        out = slow.stop(signal.SIGINT)  # what Ctrl-C in the terminal sends
    assert slow.proc.returncode == 0, out
    assert "slow: heartbeat 500 ms, election timeout 5000 ms" in out
    assert not any(pid_alive(pid) for pid in slow.pids_seen), out


def test_a_member_started_from_the_demo_joins_is_promoted_and_resumes_with_the_others(tmp_path):
    first = Demo(tmp_path, nodes=1)
    try:
        wait_for(first.started, "the one-node demo to be healthy", timeout=START_TIMEOUT)
        assert call(first.ports[0], "PUT", "/v1/kv/before", {"value": "joined"})[0] == 200
        status, body = call(first.dashboard, "POST", "/demo/members", raw=b'{"port": 1}')
        assert (status, body["code"]) == (400, "bad_request"), body
        status, body = call(first.dashboard, "POST", "/demo/members", timeout=30)
        assert status == 200 and body["member"]["state"] == "running", body
        added = body["member"]["port"]
        assert added > first.ports[0] and body["member"]["data_dir"].endswith(os.path.join("abcd-data", f"node-{added}"))
        assert "--join" in command_line(body["member"]["pid"])

        def promoted() -> bool:
            members = call(first.ports[0], "GET", "/v1/members")[1]["members"]
            return any(m["address"] == f"127.0.0.1:{added}" and m["voter"] for m in members)

        # It joins as a learner and the leader promotes it once its log has caught up.
        wait_for(promoted, "the new member to be a voter", timeout=START_TIMEOUT)
        status, body = call(added, "GET", "/v1/kv/before?serializable=true")
        assert status == 200 and body["kv"]["value"] == "joined", body
    finally:
        out = first.stop()
    assert first.proc.returncode == 0, out
    # A later run in the same folder resumes the added member with the first one.
    again = Demo(tmp_path, nodes=1, dashboard=first.dashboard)
    try:
        wait_for(again.started, "the resumed demo's first node", timeout=START_TIMEOUT)
        wait_for(lambda: again.member(added)["state"] == "running" and healthy(added), "the added member to resume")
    finally:
        out = again.stop()
    assert again.proc.returncode == 0, out


def test_demo_tls_makes_its_certificates_and_prints_a_working_abcdctl_command(tmp_path):
    demo = Demo(tmp_path, extra=("--tls",))
    try:
        dashboard = f"abcd demo: dashboard https://127.0.0.1:{demo.dashboard}/"
        wait_for(lambda: demo.alive() and "Ctrl-C stops" in demo.output(), "the TLS demo to start", timeout=START_TIMEOUT)
        out = demo.output()
        assert dashboard in out, out
        printed = next(line for line in out.splitlines() if line.strip().startswith("abcdctl "))
        args = printed.split()[2:-3]  # "abcdctl    abcdctl --endpoints ... put a x": the options
        env = dict(os.environ, PYTHONPATH=REPO)
        cli = [sys.executable, "-m", "abcd.cli", *args]
        put = subprocess.run([*cli, "put", "over", "tls"], capture_output=True, text=True, env=env, timeout=30)
        assert put.returncode == 0, put.stderr
        got = subprocess.run([*cli, "get", "over"], capture_output=True, text=True, env=env, timeout=30)
        assert got.stdout == "tls\n", got.stderr
        # Plaintext is refused: the nodes speak only TLS.
        plain = subprocess.run(
            [sys.executable, "-m", "abcd.cli", "--timeout", "1", "--endpoints", f"127.0.0.1:{demo.ports[0]}", "get", "over"],
            capture_output=True, text=True, env=env, timeout=30,
        )
        assert plain.returncode != 0 and "if it speaks TLS" in plain.stderr, plain.stderr
        assert os.path.isfile(tmp_path / "abcd-data" / "tls" / "ca.crt")
    finally:
        out = demo.stop()
    assert demo.proc.returncode == 0, out
