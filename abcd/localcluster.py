"""A cluster of real node processes on this machine, for chaos runs, benchmarks and tests.

Each node is `python -m abcd PORT --data-dir DIR ...` in its own process, on
127.0.0.1.  The first node bootstraps the cluster; the others join through it.
Everything here talks to the nodes the way a user would: through the command line
and the HTTP API.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ClusterError(RuntimeError):
    pass


# Ports are picked below the kernel's ephemeral range when it can be read (Linux).  A
# port from that range can be taken, as its local port, by any outgoing connection on
# the machine between the probe here and the node's own bind (or a restarted node's
# rebind): a node then fails with "address already in use", now and then, under load.
EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
LOWEST_PORT = 10000
_pick = random.SystemRandom()  # not the random module's state, which a test may seed


def _ephemeral_start() -> int:
    try:
        with open(EPHEMERAL_RANGE_FILE) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _all_free(base: int, count: int) -> bool:
    sockets = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in sockets:
            s.close()


def free_port_run(count: int = 1) -> int:
    """A port such that it and the `count - 1` following ones are free on 127.0.0.1 right
    now, below the ephemeral range if there is room there."""
    highest_base = _ephemeral_start() - count
    for _ in range(200):
        if highest_base > LOWEST_PORT:
            base = _pick.randrange(LOWEST_PORT, highest_base + 1)
        else:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                base = probe.getsockname()[1]
            if base + count > 65536:
                continue
        if _all_free(base, count):
            return base
    raise ClusterError(f"found no {count} consecutive free ports on 127.0.0.1")


def free_port() -> int:
    return free_port_run(1)


def http(
    port: int, method: str, path: str, body=None, *, raw: bytes | None = None, headers=None, timeout=5.0,
    ssl_context: ssl.SSLContext | None = None,
):
    """(status, parsed JSON body) of one HTTP call; HTTP error statuses are returned, not raised.

    With `ssl_context` the call is https (a node started with --cert-file).
    """
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    scheme = "https" if ssl_context is not None else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ssl_context) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as e:
        payload = e.read()
        try:
            return e.code, json.loads(payload)
        except ValueError:
            return e.code, payload.decode("utf-8", "replace")


def wait_for(predicate, what: str, timeout: float = 20.0, interval: float = 0.05):
    """Poll `predicate` until it returns something true; raise ClusterError at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as error:  # not listening yet, connection reset...
            last = error
        time.sleep(interval)
    raise ClusterError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class NodeProcess:
    def __init__(
        self, port: int, data_dir: str, args: list[str], preexec=None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.port = port
        self.ssl_context = ssl_context  # how this module calls a TLS node (its args name the node's files)
        self.data_dir = data_dir
        self.args = args
        self.preexec = preexec  # run in the child before exec (it has its own session already)
        self.proc: subprocess.Popen | None = None
        self.output_path = data_dir + ".out"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, join: str | None = None) -> "NodeProcess":
        env = dict(os.environ)
        if (REPO_ROOT / "abcd" / "__init__.py").exists():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "abcd", str(self.port), "--data-dir", self.data_dir, *self.args]
        if join:
            cmd += ["--join", join]
        with open(self.output_path, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C reaches the caller, which stops nodes in order
                preexec_fn=self.preexec,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> dict | None:
        try:
            code, body = http(self.port, "GET", "/v1/status", timeout=2, ssl_context=self.ssl_context)
        except OSError:
            return None
        return body if code == 200 else None

    def healthy(self) -> bool:
        try:
            return http(self.port, "GET", "/healthz", timeout=2, ssl_context=self.ssl_context)[0] == 200
        except OSError:
            return False

    def signal(self, signum: int) -> None:
        if self.running:
            self.proc.send_signal(signum)

    def kill(self) -> None:
        """kill -9: no flush, no goodbye."""
        if self.running:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (flush, fsync, exit 0), SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def output(self, tail: int = 4000) -> str:
        try:
            return Path(self.output_path).read_bytes().decode("utf-8", "replace")[-tail:]
        except OSError:
            return ""


class LocalCluster:
    """`with LocalCluster(root, nodes=3) as c:` starts the nodes; leaving kills them all.

    A TLS cluster: `args` name the nodes' certificate files (docs/security.md) and
    `ssl_context` is how this module calls them (trusting their CA).
    """

    def __init__(
        self, root: str, nodes: int = 3, *, args: list[str] | None = None, ready_timeout: float = 60.0, preexec=None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.root = root
        self.ssl_context = ssl_context
        self.size = nodes
        self.args = list(args or [])
        self.ready_timeout = ready_timeout
        self.preexec = preexec
        self.nodes: list[NodeProcess] = []

    def __enter__(self) -> "LocalCluster":
        try:
            self.start()
        except BaseException:
            self.kill_all()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.kill_all()

    # ------------------------------------------------------------------ lifecycle

    def new_node(self, join: str | None = None, args: list[str] | None = None) -> NodeProcess:
        port = free_port()
        name = f"n{len(self.nodes) + 1}"  # short names read better in merged logs and reports
        node = NodeProcess(
            port, os.path.join(self.root, name), ["--name", name, *self.args, *(args or [])], self.preexec,
            self.ssl_context,
        )
        self.nodes.append(node)
        return node.start(join)

    def start(self) -> None:
        first = self.new_node()
        self.wait_node(first, NodeProcess.healthy, "the first node to bootstrap")
        for _ in range(self.size - 1):
            self.new_node(join=first.address)
        self.wait_ready()

    def restart(self, node: NodeProcess) -> NodeProcess:
        """The same port and data dir in a new process (it resumes its identity and log)."""
        node.stop()
        return node.start()

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def stop_all(self, grace: float = 10.0) -> list[int | None]:
        """SIGTERM every node at once (each flushes and exits), SIGKILL what outlives `grace`."""
        for node in self.nodes:
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        return [node.stop(max(0.1, deadline - time.monotonic())) for node in self.nodes]

    # ------------------------------------------------------------------ observing

    @property
    def endpoints(self) -> list[str]:
        return [n.address for n in self.nodes if n.running]

    def wait_node(self, node: NodeProcess, check, what: str, timeout: float | None = None) -> None:
        def ok():
            if not node.running:
                raise ClusterError(f"node {node.port} exited with {node.proc.returncode}:\n{node.output()}")
            return check(node)

        wait_for(ok, what, timeout or self.ready_timeout)

    def agreed_leader(self) -> NodeProcess | None:
        """The leader every running node names, once all members are voters and applied."""
        running = [n for n in self.nodes if n.running]
        statuses = [n.status() for n in running]
        if not running or any(s is None for s in statuses):
            return None
        leaders = {s["leader"] for s in statuses}
        if len(leaders) != 1 or None in leaders:
            return None
        members = statuses[0]["members"]
        if len(members) != len(running) or not all(m["voter"] for m in members):
            return None
        for node, s in zip(running, statuses):
            if s["role"] == "leader":
                return node
        return None

    def wait_ready(self, timeout: float | None = None) -> NodeProcess:
        return wait_for(self.agreed_leader, "every node to be a voter and agree on a leader", timeout or self.ready_timeout)

    def leader(self) -> NodeProcess | None:
        for node in self.nodes:
            if node.running:
                s = node.status()
                if s and s["role"] == "leader":
                    return node
        return None


def tls_cluster_files(directory: str) -> tuple[list[str], str]:
    """A CA and one node certificate (127.0.0.1, localhost) made in `directory`, for a
    local TLS cluster: the nodes' TLS arguments (peers with mutual TLS, as
    docs/security.md sets a cluster up) and the CA file its clients trust."""
    from .tls.certs import Authority  # needs cryptography (the tls extra)

    ca = Authority("abcd local cluster CA")
    cacert = ca.write_cert(os.path.join(directory, "ca.crt"))
    cert, key = ca.issue("abcd-node").write(directory, "node")
    args = ["--cert-file", cert, "--key-file", key, "--peer-trusted-ca-file", cacert, "--peer-client-cert-auth"]
    return args, cacert
