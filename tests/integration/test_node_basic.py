"""Real node processes on loopback: bootstrap, joins, forwarding, restart, bad input."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import aiohttp
import pytest

from abcd.localcluster import free_port
from abcd.localcluster import http as call
from abcd.localcluster import wait_for

pytestmark = pytest.mark.integration


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = ["--heartbeat-ms", "20", "--election-timeout-ms", "200"]


class NodeProcess:
    def __init__(self, port: int, data_dir: str, extra: list[str] | None = None) -> None:
        self.port = port
        self.data_dir = data_dir
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir + ".stderr"

    def start(self) -> "NodeProcess":
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "abcd", str(self.port), "--data-dir", self.data_dir, *FAST, *self.extra]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        return self

    def status(self) -> dict | None:
        status, body = call(self.port, "GET", "/v1/status", timeout=2)
        return body if status == 200 else None

    def wait_healthy(self, timeout: float = 20.0) -> None:
        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.port} exited with {self.proc.returncode}:\n{self.output()}")
            return call(self.port, "GET", "/healthz", timeout=2)[0] == 200

        wait_for(healthy, f"node {self.port} to be healthy", timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "_log", None) and not self._log.closed:
            self._log.close()

    def output(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""


class Cluster:
    """Starts node processes; the fixture kills whatever is still running at the end."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.nodes: list[NodeProcess] = []

    def start(self, join: int | None = None) -> NodeProcess:
        port = free_port()
        extra = ["--join", f"127.0.0.1:{join}"] if join else []
        return self._track(NodeProcess(port, os.path.join(self.root, f"node-{port}"), extra).start())

    def restart(self, node: NodeProcess, extra: list[str] | None = None) -> NodeProcess:
        """The same port and data dir, in a new process."""
        return self._track(NodeProcess(node.port, node.data_dir, extra).start())

    def _track(self, node: NodeProcess) -> NodeProcess:
        self.nodes.append(node)
        return node

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(os.fspath(tmp_path))
    try:
        yield c
    finally:
        c.kill_all()


def voters(node: NodeProcess) -> list[int]:
    status = node.status()
    return sorted(m["id"] for m in status["members"] if m["voter"]) if status else []


def test_bootstrap_join_replicate_forward_and_restart(cluster):
    first = cluster.start()
    first.wait_healthy()
    status = first.status()
    assert status["role"] == "leader" and status["id"] == 1
    second = cluster.start(join=first.port)
    third = cluster.start(join=first.port)
    for node in (second, third):
        node.wait_healthy()
    # Both joiners were added as learners and promoted once caught up.
    wait_for(lambda: voters(first) == [1, 2, 3], "three voters")
    cluster_id = status["cluster_id"]
    for node in (second, third):
        assert node.status()["cluster_id"] == cluster_id

    # A write through a follower is forwarded to the leader.
    follower = second if second.status()["role"] != "leader" else third
    code, put = call(follower.port, "PUT", "/v1/kv/greeting", {"value": "hello"})
    assert code == 200, put
    # Linearizable reads through every node see it (followers forward them).
    for node in (first, second, third):
        code, got = call(node.port, "GET", "/v1/kv/greeting")
        assert code == 200 and got["kv"]["value"] == "hello", (node.port, got)
        assert got["revision"] >= put["revision"]

    # The session channel of a follower forwards too.
    async def session_roundtrip():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"ws://127.0.0.1:{follower.port}/v1/session") as ws:
                await ws.send_str(json.dumps([
                    {"id": 1, "op": "put", "key": "s", "value": "v", "request_id": "it:1"},
                    {"id": 2, "op": "put", "key": 5, "value": "v"},
                ]))
                answers = {}
                while len(answers) < 2:
                    for answer in await ws.receive_json(timeout=10):
                        answers[answer["id"]] = answer
                await ws.send_str(json.dumps([{"id": 3, "op": "get", "key": "s"}]))
                [read] = await ws.receive_json(timeout=10)
                return answers, read

    answers, read = asyncio.run(session_roundtrip())
    assert answers[1]["status"] == 200 and answers[2]["status"] == 400
    assert read["status"] == 200 and read["body"]["kv"]["value"] == "v"

    # Malformed input gets the contract's errors, and every node keeps serving.
    assert call(follower.port, "PUT", "/v1/kv/x", raw=b'{"value": ')[0] == 400
    assert call(follower.port, "PUT", "/v1/kv/x", {"value": 42})[0] == 400
    code, huge = call(follower.port, "PUT", "/v1/kv/" + "k" * 1500, {"value": "v"})
    assert code == 413 and huge["code"] == "too_large"
    assert call(first.port, "POST", "/v1/txn", raw=b"[1,2")[0] == 400

    # Leadership transfer, asked of a follower (forwarded to the leader).
    target = next(n for n in (first, second, third) if n.status()["role"] != "leader" and n is not follower)
    target_id = target.status()["id"]
    code, moved = call(follower.port, "POST", "/v1/leader/transfer", {"to": target_id})
    assert code == 200 and moved == {"leader": target_id}, moved
    wait_for(lambda: target.status()["role"] == "leader", "the transferee to lead")

    # Restart a follower with the same data dir: same identity, data still there,
    # and what was written while it was down reaches it.
    down = next(n for n in (first, second, third) if n.status()["role"] != "leader")
    live = [n for n in (first, second, third) if n is not down]
    before = down.status()
    assert down.stop() == 0, down.output()
    code, later = call(live[0].port, "PUT", "/v1/kv/while-down", {"value": "x"})
    assert code == 200, later
    restarted = cluster.restart(down, ["--join", "127.0.0.1:1"])  # --join is ignored on a restart
    restarted.wait_healthy()
    after = restarted.status()
    assert after["id"] == before["id"] and after["cluster_id"] == cluster_id
    wait_for(
        lambda: call(restarted.port, "GET", "/v1/kv/while-down?serializable=true")[0] == 200,
        "the restarted node to catch up",
    )
    code, got = call(restarted.port, "GET", "/v1/kv/greeting?serializable=true")
    assert code == 200 and got["kv"]["value"] == "hello"
    for node in (*live, restarted):
        assert node.stop() == 0, node.output()


def test_a_single_node_restarts_with_its_data(cluster):
    node = cluster.start()
    node.wait_healthy()
    for i in range(20):
        assert call(node.port, "PUT", f"/v1/kv/k{i}", {"value": str(i)})[0] == 200
    assert node.stop() == 0
    assert os.path.exists(os.path.join(node.data_dir, "meta.json"))
    assert os.path.exists(os.path.join(node.data_dir, "node.log"))
    again = cluster.restart(node)
    again.wait_healthy()
    code, listing = call(again.port, "GET", "/v1/kv?prefix=k")
    assert code == 200 and len(listing["kvs"]) == 20
    assert again.status()["term"] > 2  # a new election after the restart
    assert again.stop() == 0


def test_leader_killed_a_write_through_a_follower_waits_for_the_new_leader(cluster):
    first = cluster.start()
    first.wait_healthy()
    others = [cluster.start(join=first.port), cluster.start(join=first.port)]
    for node in others:
        node.wait_healthy()
    wait_for(lambda: voters(first) == [1, 2, 3], "three voters")
    assert call(others[0].port, "PUT", "/v1/kv/before", {"value": "1"})[0] == 200
    first.kill()  # kill -9: no goodbye
    # The follower still believes in the dead leader; it holds the write until the
    # survivors elect a new one (well within two election timeouts), then forwards it.
    code, put = call(others[0].port, "PUT", "/v1/kv/during", {"value": "2"})
    assert code == 200, put
    new_leader = others[0].status()["leader"]
    assert new_leader in (2, 3)
    code, got = call(others[1].port, "GET", "/v1/kv/during")
    assert code == 200 and got["kv"]["value"] == "2"
    # The old leader comes back as a follower and catches up.
    back = cluster.restart(first)
    back.wait_healthy()
    wait_for(lambda: call(back.port, "GET", "/v1/kv/during?serializable=true")[0] == 200, "the old leader to catch up")
    assert back.status()["role"] == "follower"
    for node in (*others, back):
        assert node.stop() == 0, node.output()


def test_a_leader_stopped_cleanly_hands_over_leadership_first(cluster):
    first = cluster.start()
    first.wait_healthy()
    others = [cluster.start(join=first.port), cluster.start(join=first.port)]
    for node in others:
        node.wait_healthy()
    wait_for(lambda: voters(first) == [1, 2, 3], "three voters")
    term = first.status()["term"]
    assert first.stop() == 0
    # The hand-off happened before the old leader exited: a survivor leads already,
    # in the very next term (a TimeoutNow election, no timeout and no split vote).
    status = wait_for(lambda: (s := others[0].status()) and s["leader"] in (2, 3) and s, "a survivor to lead")
    assert status["term"] == term + 1
    assert "handing leadership to node" in first.output()
    assert call(others[1].port, "PUT", "/v1/kv/k", {"value": "v"})[0] == 200
    for node in others:
        assert node.stop() == 0
