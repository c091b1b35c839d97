"""`python -m abcd demo`, the README's first command: a cluster that comes back when run again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from abcd.localcluster import free_port_run, wait_for
from abcd.localcluster import http as call

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODES = 3


def start_demo(cwd, base: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "abcd", "demo", "--nodes", str(NODES), "--base-port", str(base)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def healthy(port: int) -> bool:
    return call(port, "GET", "/healthz", timeout=1)[0] == 200


def all_healthy(demo: subprocess.Popen, ports) -> bool:
    # A demo that gave up (a node that could not start) says why: fail with that at once.
    assert demo.poll() is None, f"the demo exited with {demo.returncode}:\n{demo.stdout.read()}"
    return all(healthy(p) for p in ports)


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
        wait_for(lambda: all_healthy(first, ports), "the first demo's nodes to be healthy", timeout=60)
        assert call(base, "PUT", "/v1/kv/kept", {"value": "across runs"})[0] == 200
    finally:
        out = stop_demo(first)
    assert first.returncode == 0, out
    again = start_demo(tmp_path, base)
    try:
        # Every node resumes from ./abcd-data; none can be healthy before a majority is back.
        wait_for(lambda: all_healthy(again, ports), "the resumed demo's nodes to be healthy", timeout=60)
        status, body = call(base + 1, "GET", "/v1/kv/kept")
        assert status == 200 and body["kv"]["value"] == "across runs"
    finally:
        out = stop_demo(again)
    assert again.returncode == 0, out
    assert "did not become healthy" not in out
