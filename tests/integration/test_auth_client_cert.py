"""Auth with TLS client certificates: a call without a token acts for the user named by
the common name of its verified client certificate (etcd's behaviour), in a real
cluster of three started through the command line with --client-cert-auth."""
from __future__ import annotations

import asyncio
import os
import ssl

import pytest

pytest.importorskip("abcd.tls.certs", reason="this abcd has no TLS")

from abcd.client import Client, ClientError  # noqa: E402
from abcd.localcluster import LocalCluster, http, wait_for  # noqa: E402
from abcd.tls.certs import Authority  # noqa: E402

pytestmark = pytest.mark.integration

NODE_NAME = "abcd-node"


def test_a_client_certificate_names_the_user(tmp_path):
    root = str(tmp_path)
    node_ca, client_ca = Authority("abcd test node CA"), Authority("abcd test client CA")
    ca = node_ca.write_cert(os.path.join(root, "ca.crt"))
    client_ca_file = client_ca.write_cert(os.path.join(root, "client-ca.crt"))
    node_cert, node_key = node_ca.issue(NODE_NAME).write(root, "node")
    alice_cert, alice_key = client_ca.issue("alice").write(root, "alice")
    root_cert, root_key = client_ca.issue("root").write(root, "root")
    nobody_cert, nobody_key = client_ca.issue("nobody").write(root, "nobody")

    def context(cert: str, key: str) -> ssl.SSLContext:
        made = ssl.create_default_context(cafile=ca)
        made.load_cert_chain(cert, key)
        return made

    as_root, as_alice, as_nobody = context(root_cert, root_key), context(alice_cert, alice_key), context(nobody_cert, nobody_key)
    args = ["--heartbeat-ms", "50", "--election-timeout-ms", "500", "--log-level", "WARNING",
            "--cert-file", node_cert, "--key-file", node_key, "--trusted-ca-file", client_ca_file, "--client-cert-auth",
            "--peer-trusted-ca-file", ca, "--peer-client-cert-auth", "--peer-cert-allowed-cn", NODE_NAME]
    os.makedirs(os.path.join(root, "cluster"))
    with LocalCluster(os.path.join(root, "cluster"), 3, args=args, ssl_context=as_root, ready_timeout=60) as cluster:
        first = cluster.nodes[0]
        for method, path, body in [
            ("POST", "/v1/auth/users", {"name": "root", "password": "root pw"}),
            ("POST", "/v1/auth/users", {"name": "alice", "password": "alice pw"}),
            ("POST", "/v1/auth/roles", {"name": "app"}),
            ("POST", "/v1/auth/roles/app/permissions", {"key": "app/", "prefix": True, "perm": "readwrite"}),
            ("PUT", "/v1/auth/users/alice/roles/app", None),
            ("POST", "/v1/auth/enable", None),
        ]:
            assert http(first.port, method, path, body, ssl_context=as_root)[0] == 200, path
        for node in cluster.nodes:  # every member, a follower passing the call on to the leader too
            wait_for(lambda node=node: http(node.port, "PUT", "/v1/kv/app/x", {"value": "1"}, ssl_context=as_alice)[0] == 200,
                     f"{node.port} to take alice's certificate as alice")
            status, body = http(node.port, "PUT", "/v1/kv/other", {"value": "1"}, ssl_context=as_alice)
            assert status == 403 and "user 'alice'" in body["error"], body
            # A verified certificate whose name is no user is no user.
            assert http(node.port, "GET", "/v1/kv/app/x", ssl_context=as_nobody)[0] == 401
            assert http(node.port, "PUT", "/v1/kv/other", {"value": "1"}, ssl_context=as_root)[0] == 200

        async def session_and_watch() -> None:
            endpoints = [f"https://{n.address}" for n in cluster.nodes]
            async with Client(endpoints, cacert=ca, cert=alice_cert, key=alice_key) as alice:
                await alice.put("app/session", "2")
                with pytest.raises(ClientError) as refused:
                    await alice.put("other", "2")
                assert refused.value.status == 403
                async for frame in alice.watch("app/", prefix=True, start_revision=1):
                    assert frame["events"]
                    break

        asyncio.run(session_and_watch())
