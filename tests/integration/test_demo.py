"""`python -m abcd demo`, the README's first command: a cluster that comes back when run again."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from abcd.localcluster import http as call
from abcd.localcluster import wait_for

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODES = 3


def free_port_run(count: int) -> int:
    """A port such that it and the `count - 1` following ones are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"found no {count} consecutive free ports")


def start_demo(cwd, base: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "abcd", "demo", "--nodes", str(NODES), "--base-port", str(base)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def healthy(port: int) -> bool:
    return call(port, "GET", "/healthz", timeout=1)[0] == 200


def stop_demo(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def test_a_demo_run_again_in_the_same_folder_resumes_its_cluster_and_data(tmp_path):
    base = free_port_run(NODES)
    ports = range(base, base + NODES)
    first = start_demo(tmp_path, base)
    try:
        wait_for(lambda: all(healthy(p) for p in ports), "the first demo's nodes to be healthy", timeout=60)
        assert call(base, "PUT", "/v1/kv/kept", {"value": "across runs"})[0] == 200
    finally:
        out = stop_demo(first)
    assert first.returncode == 0, out
    again = start_demo(tmp_path, base)
    try:
        # Every node resumes from ./abcd-data; none can be healthy before a majority is back.
        wait_for(lambda: all(healthy(p) for p in ports), "the resumed demo's nodes to be healthy", timeout=60)
        status, body = call(base + 1, "GET", "/v1/kv/kept")
        assert status == 200 and body["kv"]["value"] == "across runs"
    finally:
        out = stop_demo(again)
    assert again.returncode == 0, out
    assert "did not become healthy" not in out
