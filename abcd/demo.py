"""`python -m abcd demo`: a local cluster in one command; Ctrl-C stops it.

Starts node 1 on --base-port, bootstrapping a cluster, waits until it is healthy, then
starts the others on the following ports, each joining through the first.  When
./abcd-data/node-<port> already holds the first node (a demo run before), every node
resumes from its data dir: they all start at once, since a resumed member can only
become healthy once a majority of its cluster is back.  Every node is a child process
`python -m abcd PORT ...`; on Ctrl-C (or SIGTERM) each gets SIGTERM, which makes it
flush, fsync and exit, and the demo waits for them all.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


def _wait_healthy(port: int, procs: list[subprocess.Popen], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _healthy(port):
            return True
        if any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.1)
    return False


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="abcd demo", description="Start a local abcd cluster; Ctrl-C stops it.")
    parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    parser.add_argument("--base-port", type=int, default=8080, help="port of the first node; the others follow (default 8080)")
    parser.add_argument("--log-level", default="WARNING", help="the nodes' log level on the terminal (default WARNING)")
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 15:
        parser.error(f"--nodes must be between 1 and 15, got {args.nodes}")
    ports = [args.base_port + i for i in range(args.nodes)]
    if ports[-1] > 65535:
        parser.error("--base-port too high for that many nodes")
    first = f"127.0.0.1:{ports[0]}"
    procs: list[subprocess.Popen] = []
    stop = {"now": False}

    def on_signal(signum, frame) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    resuming = os.path.exists(os.path.join("abcd-data", f"node-{ports[0]}", "meta.json"))
    try:
        for i, port in enumerate(ports):
            cmd = [sys.executable, "-m", "abcd", str(port), "--log-level", args.log_level]
            if i:
                cmd += ["--join", first]  # ignored by a node that resumes from its data dir
            # Children ignore the terminal's Ctrl-C: the demo stops them itself, in order.
            procs.append(subprocess.Popen(cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)))
            if resuming and i < len(ports) - 1:
                continue  # resumed members become healthy together, once a majority is back
            for waiting in ports if resuming else [port]:
                if not _wait_healthy(waiting, procs):
                    print(f"abcd demo: node on port {waiting} did not become healthy; stopping", file=sys.stderr)
                    return 1
        print(f"abcd demo: {args.nodes} nodes on ports {ports[0]}-{ports[-1]}, data in {os.path.abspath('abcd-data')}")
        print(f"  node info  http://{first}/")
        print(f"  status     curl http://{first}/v1/status")
        print(f"  put / get  curl -X PUT -d '{{\"value\": \"x\"}}' http://{first}/v1/kv/a ; curl http://{first}/v1/kv/a")
        print("  Ctrl-C stops the cluster")
        while not stop["now"]:
            if any(p.poll() is not None for p in procs):
                print("abcd demo: a node exited; stopping the others", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        print("abcd demo: stopping", file=sys.stderr)
        _stop_all(procs)
