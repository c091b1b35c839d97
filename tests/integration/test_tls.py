"""A TLS cluster of three real processes, started through the command line.

The layout of docs/security.md: one CA signs the nodes' certificates (what the port
presents, and what peers present to each other), a second CA signs the clients'
certificates; the nodes demand a client certificate (--client-cert-auth) and a peer
certificate from the first CA with an allowed name (--peer-client-cert-auth,
--peer-cert-allowed-cn).  Every certificate is made here, at test time.
"""
from __future__ import annotations

import asyncio
import datetime
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading

import aiohttp
import pytest

from abcd.client import Client, Unavailable
from abcd.localcluster import REPO_ROOT, LocalCluster, NodeProcess, free_port, http, tls_cluster_files, wait_for
from abcd.tls.certs import Authority

pytestmark = pytest.mark.integration

NODE_NAME = "abcd-node"


class Files:
    """Every certificate of the test, written under one folder."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.node_ca = Authority("abcd test node CA")
        self.client_ca = Authority("abcd test client CA")
        self.ca = self.node_ca.write_cert(self.path("ca.crt"))
        self.client_ca_file = self.client_ca.write_cert(self.path("client-ca.crt"))
        self.node_cert, self.node_key = self.node_ca.issue(NODE_NAME).write(root, "node")
        self.client_cert, self.client_key = self.client_ca.issue("alice").write(root, "client")
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
        self.expired_cert, self.expired_key = self.client_ca.issue("old", days=1, not_before=past).write(root, "expired")
        stranger = Authority("a stranger's CA")
        self.stranger_ca = stranger.write_cert(self.path("stranger-ca.crt"))
        self.stranger_cert, self.stranger_key = stranger.issue("mallory").write(root, "stranger")
        # Signed by the node CA, but with a name the nodes do not allow as a peer.
        self.intruder_cert, self.intruder_key = self.node_ca.issue("intruder").write(root, "intruder")

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def node_args(self) -> list[str]:
        return [
            "--cert-file", self.node_cert, "--key-file", self.node_key,
            "--trusted-ca-file", self.client_ca_file, "--client-cert-auth",
            "--peer-trusted-ca-file", self.ca, "--peer-client-cert-auth", "--peer-cert-allowed-cn", NODE_NAME,
        ]

    def client_context(self, cert: str | None = "client", *, ca: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=ca or self.ca)
        if cert is not None:
            context.load_cert_chain(getattr(self, f"{cert}_cert"), getattr(self, f"{cert}_key"))
        return context


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    files = Files(str(tmp_path_factory.mktemp("tls")))
    args = ["--heartbeat-ms", "50", "--election-timeout-ms", "500", *files.node_args()]
    root = str(tmp_path_factory.mktemp("tls-cluster"))
    with LocalCluster(root, 3, args=args, ssl_context=files.client_context(), ready_timeout=60) as cluster:
        yield cluster, files


def refusal(call) -> BaseException:
    try:
        call()
    except (OSError, ssl.SSLError) as e:
        return e
    raise AssertionError("the call was not refused")


def still_serving(cluster) -> None:
    for node in cluster.nodes:
        assert node.running and node.healthy(), node.output()


def test_every_client_path_works_over_tls(tls_cluster):
    cluster, files = tls_cluster
    leader = cluster.wait_ready()
    follower, other = [n for n in cluster.nodes if n is not leader]
    context = files.client_context()
    # Through a follower: the write is forwarded to the leader over TLS, with the peer certificate.
    assert http(follower.port, "PUT", "/v1/kv/tls/http", {"value": "1"}, ssl_context=context)[0] == 200
    assert http(other.port, "GET", "/v1/kv/tls/http", ssl_context=context)[1]["kv"]["value"] == "1"
    third = other

    async def session_watch_and_events():
        endpoints = [f"https://{follower.address}"]
        async with Client(endpoints, cacert=files.ca, cert=files.client_cert, key=files.client_key) as client:
            watched = []

            async def watch():
                async for frame in client.watch("tls/", prefix=True):
                    watched.extend(e["kv"]["key"] for e in frame.get("events", ()))
                    if "tls/session" in watched:
                        return

            watcher = asyncio.ensure_future(watch())
            await asyncio.sleep(0.3)  # the watch is opened before the write it must see
            await client.put("tls/session", "2")  # over /v1/session, forwarded to the leader
            assert (await client.get("tls/session"))["kv"]["value"] == "2"
            await asyncio.wait_for(watcher, 10)
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"wss://{third.address}/v1/events", ssl=context) as ws:
                first_frame = await ws.receive_json(timeout=5)
        return first_frame

    frame = asyncio.run(session_watch_and_events())
    assert frame, "the event stream sent nothing"

    tls = ["--endpoints", ",".join(n.address for n in cluster.nodes),
           "--cacert", files.ca, "--cert", files.client_cert, "--key", files.client_key]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    kvclient = [sys.executable, str(REPO_ROOT / "tools" / "kvclient.py"), *tls]
    put = subprocess.run([*kvclient, "put", "tls/kvclient", "3"], capture_output=True, text=True, env=env, timeout=30)
    assert put.returncode == 0, put.stderr
    got = subprocess.run([*kvclient, "get", "tls/kvclient"], capture_output=True, text=True, env=env, timeout=30)
    assert got.stdout == "3\n", got.stderr


def test_plaintext_wrong_ca_expired_and_missing_client_certificates_are_refused(tls_cluster):
    cluster, files = tls_cluster
    node = cluster.nodes[0]

    plain = refusal(lambda: http(node.port, "GET", "/v1/status"))
    assert "closed connection" in str(plain) or "reset" in str(plain).lower(), plain
    wrong_ca = refusal(lambda: http(node.port, "GET", "/v1/status", ssl_context=files.client_context(ca=files.stranger_ca)))
    assert "certificate verify failed" in str(wrong_ca), wrong_ca
    refusal(lambda: http(node.port, "GET", "/v1/status", ssl_context=files.client_context(cert=None)))
    refusal(lambda: http(node.port, "GET", "/v1/status", ssl_context=files.client_context(cert="stranger")))
    refusal(lambda: http(node.port, "GET", "/v1/status", ssl_context=files.client_context(cert="expired")))

    # Each refusal is logged by the node with its reason; the node keeps serving.
    wait_for(lambda: "a plaintext client?" in node.output(200_000), "the plaintext client's refusal in the log")
    log = node.output(200_000)
    assert "certificate verify failed" in log or "unknown ca" in log, log[-3000:]
    assert "the client presented no certificate" in log, log[-3000:]
    assert "certificate has expired" in log, log[-3000:]
    still_serving(cluster)

    async def plaintext_client():
        async with Client([f"http://{node.address}"], timeout=1) as client:
            await client.get("x")

    with pytest.raises(Unavailable, match="if it speaks TLS, use https://"):
        asyncio.run(plaintext_client())


def test_only_peers_with_a_peer_ca_certificate_and_an_allowed_name_may_use_the_raft_link(tls_cluster):
    cluster, files = tls_cluster
    node = cluster.nodes[0]

    async def dial_raft(cert: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"wss://{node.address}/v1/raft", ssl=files.client_context(cert)):
                    return 101, ""
            except aiohttp.WSServerHandshakeError as e:
                return e.status, e.message

    # A client's certificate (the client CA) is good for the API, not for the peer link.
    assert http(node.port, "GET", "/v1/status", ssl_context=files.client_context())[0] == 200
    status, _ = asyncio.run(dial_raft("client"))
    assert status == 403
    status, _ = asyncio.run(dial_raft("intruder"))
    assert status == 403
    log = node.output(200_000)
    assert "is not issued by the peer CA" in log and "'intruder' is not in --peer-cert-allowed-cn" in log, log[-3000:]
    # Nor may it add a member.
    code, body = http(
        node.port, "POST", "/v1/members", {"address": "127.0.0.1:1", "name": "x"}, ssl_context=files.client_context()
    )
    assert code == 403 and "--peer-client-cert-auth" in body["error"], body
    still_serving(cluster)


def test_a_node_whose_peer_certificate_is_not_from_the_peer_ca_cannot_join(tls_cluster, tmp_path):
    cluster, files = tls_cluster
    args = [a for a in files.node_args()]
    args += ["--peer-cert-file", files.client_cert, "--peer-key-file", files.client_key]
    stray = NodeProcess(free_port(), str(tmp_path / "stray"), ["--name", "stray", *args])
    stray.start(join=cluster.nodes[0].address)
    try:
        assert stray.proc.wait(30) != 0
    finally:
        stray.kill()
    assert "is not issued by the peer CA" in stray.output(), stray.output()
    assert len(http(cluster.nodes[0].port, "GET", "/v1/members", ssl_context=files.client_context())[1]["members"]) == 3


def served_certificate(port: int, ca: str) -> dict:
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert()


def test_sighup_reloads_a_rotated_certificate_while_the_cluster_keeps_serving(tls_cluster):
    cluster, files = tls_cluster
    before = [served_certificate(n.port, files.ca)["serialNumber"] for n in cluster.nodes]

    failures: list[BaseException] = []
    writes = 0
    stop = threading.Event()

    def write_continuously():
        nonlocal writes
        context = files.client_context()
        while not stop.is_set():
            node = cluster.nodes[writes % 3]
            try:
                code, body = http(node.port, "PUT", f"/v1/kv/rotation/{writes}", {"value": "x"}, ssl_context=context)
                assert code == 200, body
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)
                return
            writes += 1

    writer = threading.Thread(target=write_continuously)
    writer.start()
    try:
        # A new certificate for the same name, written over the old files, then SIGHUP.
        files.node_ca.issue(NODE_NAME).write(files.root, "node")
        for node in cluster.nodes:
            node.signal(signal.SIGHUP)
        for node in cluster.nodes:
            wait_for(lambda: "TLS files reloaded (SIGHUP)" in node.output(200_000), f"node {node.port} to reload")
        writes_at_reload = writes
        wait_for(lambda: writes >= writes_at_reload + 20 or failures, "writes after the reload")
    finally:
        stop.set()
        writer.join(30)
    assert not failures, failures
    after = [served_certificate(n.port, files.ca)["serialNumber"] for n in cluster.nodes]
    assert all(a != b for a, b in zip(before, after)), (before, after)
    assert len(set(after)) == 1  # every node serves the new file
    still_serving(cluster)


def test_auto_tls_makes_self_signed_certificates_once_and_peers_talk_encrypted(tmp_path):
    # Self-signed certificates authenticate nobody: this client, like the peers, skips verification.
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    args = ["--heartbeat-ms", "50", "--election-timeout-ms", "500", "--auto-tls", "--peer-auto-tls"]
    with LocalCluster(str(tmp_path), 2, args=args, ssl_context=unverified, ready_timeout=60) as cluster:
        first, second = cluster.nodes
        assert http(first.port, "PUT", "/v1/kv/auto", {"value": "1"}, ssl_context=unverified)[0] == 200
        assert http(second.port, "GET", "/v1/kv/auto", ssl_context=unverified)[1]["kv"]["value"] == "1"
        made = tmp_path / "n1" / "tls" / "auto.crt"
        assert made.is_file() and (tmp_path / "n1" / "tls" / "peer-auto.crt").is_file()
        # The certificate file is the CA a client can trust for that one node.
        trusting = ssl.create_default_context(cafile=str(made))
        assert http(first.port, "GET", "/healthz", ssl_context=trusting)[0] == 200
        with pytest.raises(OSError):
            http(first.port, "GET", "/healthz")  # plaintext: refused
        before = made.read_bytes()
        cluster.restart(first)
        cluster.wait_node(first, NodeProcess.healthy, "the restarted node")
        assert made.read_bytes() == before  # made once, reused


def test_under_peer_mutual_tls_alone_a_peer_without_a_certificate_is_refused_and_clients_need_none(tmp_path):
    # The layout of `demo --tls`: no --client-cert-auth, so the handshake lets a
    # connection without a certificate through; /v1/raft and joins then refuse it.
    tls_args, cacert = tls_cluster_files(str(tmp_path / "tls"))
    context = ssl.create_default_context(cafile=cacert)
    (tmp_path / "cluster").mkdir()
    with LocalCluster(str(tmp_path / "cluster"), 1, args=tls_args, ssl_context=context) as cluster:
        node = cluster.nodes[0]
        assert http(node.port, "PUT", "/v1/kv/k", {"value": "v"}, ssl_context=context)[0] == 200

        async def dial_raft():
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(f"wss://{node.address}/v1/raft", ssl=context)
                return refused.value.status

        assert asyncio.run(dial_raft()) == 403
        code, body = http(node.port, "POST", "/v1/members", {"address": "127.0.0.1:1"}, ssl_context=context)
        assert code == 403 and "presented no certificate" in body["error"], body
        wait_for(lambda: "refused GET /v1/raft" in node.output(), "the refusal in the node's log")
        assert node.healthy()
