"""Auth in a real cluster of three processes, set up with abcdctl as a person would:
every member checks tokens, a follower passes the caller on to the leader, a user
deleted through one member is refused by every member, and the auth state survives
snapshots and a restart of the whole cluster."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from abcd.client import Client, ClientError
from abcd.localcluster import LocalCluster, http, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING", "--snapshot-count", "30",
        "--snapshot-catchup-entries", "10"]
ROOT_PW, ALICE_PW = "root secret", "alice secret"


def abcdctl(cluster: LocalCluster, *args: str, user: str | None = None, password: str | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ABCD_PASSWORD", None)
    if password is not None:
        env["ABCD_PASSWORD"] = password
    command = [sys.executable, str(REPO / "tools" / "kvclient.py"), "--endpoints", ",".join(cluster.endpoints)]
    if user is not None:
        command += ["--user", user]
    return subprocess.run(command + list(args), input=stdin, capture_output=True, text=True, timeout=60, env=env)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def token(node, name: str, password: str) -> str:
    status, body = http(node.port, "POST", "/v1/auth/authenticate", {"name": name, "password": password})
    assert status == 200, body
    return body["token"]


def get(node, key: str, tok: str | None) -> int:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return http(node.port, "GET", f"/v1/kv/{key}", headers=headers)[0]


def test_auth_across_members_snapshots_and_restarts(tmp_path):
    with LocalCluster(str(tmp_path), nodes=3, args=ARGS) as cluster:
        # Set up with abcdctl, with auth still off.
        ok(abcdctl(cluster, "user", "add", "root", "--password-stdin", stdin=ROOT_PW + "\n"))
        ok(abcdctl(cluster, "user", "add", "alice", "--password-stdin", stdin=ALICE_PW + "\n"))
        ok(abcdctl(cluster, "role", "add", "app"))
        ok(abcdctl(cluster, "role", "grant-permission", "app", "readwrite", "app/", "--prefix"))
        ok(abcdctl(cluster, "user", "grant-role", "alice", "app"))
        assert "disabled" in ok(abcdctl(cluster, "auth", "status"))
        ok(abcdctl(cluster, "auth", "enable"))

        refused = abcdctl(cluster, "put", "app/a", "1")
        assert refused.returncode == 1 and "401 unauthenticated" in refused.stderr and "--user" in refused.stderr
        ok(abcdctl(cluster, "put", "app/a", "1", user="alice", password=ALICE_PW))
        ok(abcdctl(cluster, "put", "app/b", "1", user=f"alice:{ALICE_PW}"))
        denied = abcdctl(cluster, "put", "other", "1", user="alice", password=ALICE_PW)
        assert denied.returncode == 1 and "403 permission_denied" in denied.stderr and "'other'" in denied.stderr
        assert "alice" in ok(abcdctl(cluster, "user", "list", user="root", password=ROOT_PW))
        assert "app/" in ok(abcdctl(cluster, "role", "list", user="root", password=ROOT_PW))

        leader = cluster.wait_ready()
        followers = [n for n in cluster.nodes if n is not leader]
        # Through a follower: it checks the caller, then the leader checks the forwarded token.
        alice = token(followers[0], "alice", ALICE_PW)
        headers = {"Authorization": f"Bearer {alice}"}
        assert http(followers[0].port, "PUT", "/v1/kv/app/f", {"value": "1"}, headers=headers)[0] == 200
        assert http(followers[0].port, "PUT", "/v1/kv/other", {"value": "1"}, headers=headers)[0] == 403
        to = {"to": followers[1].status()["id"]}
        assert http(followers[0].port, "POST", "/v1/leader/transfer", to, headers=headers)[0] == 403
        root = {"Authorization": f"Bearer {token(followers[0], 'root', ROOT_PW)}"}
        # An auth change through a follower: hashed there, proposed through the leader.
        status, body = http(followers[1].port, "POST", "/v1/auth/users", {"name": "carol", "password": "carol pw"},
                            headers=root)
        assert status == 200, body
        assert http(followers[1].port, "POST", "/v1/auth/users", {"name": "dave", "password": "d"}, headers=headers)[0] == 403
        wait_for(lambda: http(leader.port, "POST", "/v1/auth/authenticate", {"name": "carol", "password": "carol pw"})[0] == 200,
                 "the leader to know carol")
        status, body = http(followers[0].port, "POST", "/v1/leader/transfer", to, headers=root, timeout=10)
        assert status == 200, body

        # Enough writes for every member to take snapshots holding the auth state.
        async def fill() -> None:
            async with Client(cluster.endpoints, user="alice", password=ALICE_PW, timeout=20) as c:
                for i in range(80):
                    await c.put(f"app/k{i:03}", "v")

        asyncio.run(fill())
        wait_for(lambda: all((n.status() or {}).get("snapshot_index", 0) > 0 for n in cluster.nodes),
                 "every member to take a snapshot")

        # Restart every member: auth comes back from the snapshot and the log.
        cluster.stop_all()
        for node in cluster.nodes:
            node.start()
        cluster.wait_ready()
        for node in cluster.nodes:
            wait_for(lambda node=node: get(node, "app/a", alice) == 200,
                     f"the token issued before the restart to work on {node.port}")
            assert get(node, "app/a", None) == 401
            assert get(node, "other", alice) == 403

        # Deleted through one member, refused by every member (once each applied it).
        ok(abcdctl(cluster, "user", "delete", "alice", user="root", password=ROOT_PW))
        for node in cluster.nodes:
            wait_for(lambda node=node: get(node, "app/a", alice) == 401, f"node {node.port} to refuse the deleted user")
        status, body = http(cluster.nodes[0].port, "POST", "/v1/auth/authenticate", {"name": "alice", "password": ALICE_PW})
        assert status == 401

        # Auth off again: calls need no user.
        ok(abcdctl(cluster, "auth", "disable", user="root", password=ROOT_PW))
        for node in cluster.nodes:
            wait_for(lambda node=node: get(node, "app/a", None) == 200, f"node {node.port} to serve without a user")


def test_a_revoked_permission_is_enforced_on_a_follower(tmp_path):
    async def scenario(endpoints: list[str], follower: str) -> None:
        async with Client(endpoints) as admin:
            await admin.user_add("root", ROOT_PW)
            await admin.user_add("bob", "bob pw")
            await admin.role_add("w")
            await admin.role_grant_permission("w", "b/", "write", prefix=True)
            await admin.user_grant_role("bob", "w")
            await admin.auth_enable()
        async with Client([follower], user="bob", password="bob pw") as bob, \
                Client(endpoints, user="root", password=ROOT_PW) as root:
            await bob.put("b/1", "x")
            await root.role_revoke_permission("w", "b/", prefix=True)
            # The follower may lag by a heartbeat; the leader's apply refuses in any case.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    await bob.put("b/2", "x")
                except ClientError as e:
                    assert e.status == 403
                    break
                assert asyncio.get_running_loop().time() < deadline, "the revoked permission still lets bob write"
                await asyncio.sleep(0.05)

    with LocalCluster(str(tmp_path), nodes=3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        follower = next(n for n in cluster.nodes if n is not leader)
        asyncio.run(scenario(cluster.endpoints, follower.address))


def test_a_node_with_the_cluster_token_joins_a_cluster_with_auth_on(tmp_path):
    with LocalCluster(str(tmp_path), nodes=1, args=ARGS + ["--cluster-token", "peers-only"]) as cluster:
        ok(abcdctl(cluster, "user", "add", "root", "--password-stdin", stdin=ROOT_PW + "\n"))
        ok(abcdctl(cluster, "auth", "enable"))
        first = cluster.nodes[0]
        # Neither a user nor the token: a user is asked for; root without the token: the
        # token is still needed, as on any cluster started with one.
        status, body = http(first.port, "POST", "/v1/members", {"address": "127.0.0.1:1"})
        assert status == 401 and body["code"] == "unauthenticated"
        root_only = {"Authorization": f"Bearer {token(first, 'root', ROOT_PW)}"}
        status, body = http(first.port, "POST", "/v1/members", {"address": "127.0.0.1:1"}, headers=root_only)
        assert status == 403 and body["code"] == "forbidden"
        # ...but a node that presents the cluster token is a peer, not a user.
        joined = cluster.new_node(join=first.address)
        cluster.wait_ready()
        members = {m["address"] for m in http(first.port, "GET", "/v1/members")[1]["members"]}
        assert joined.address in members
        assert get(joined, "anything", None) == 401
        root = token(joined, "root", ROOT_PW)
        assert http(joined.port, "PUT", "/v1/kv/k", {"value": "v"}, headers={"Authorization": f"Bearer {root}"})[0] == 200
