"""Compaction on real processes: `POST /v1/compact`, `abcdctl compact`, the client's
compact, and the leader's automatic compaction; reads and watches below the
compaction point answer `compacted` on every member.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from abcd.client import BadRequest, Client
from abcd.localcluster import LocalCluster, free_port, http, wait_for

pytestmark = pytest.mark.integration

ARGS = ["--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING"]


def compacted_below(node, key: str, revision: int) -> bool:
    """The node's own state (serializable) refuses a read of `key` at `revision` as compacted."""
    code, body = http(node.port, "GET", f"/v1/kv/{key}?revision={revision}&serializable=true")
    return code == 400 and body["code"] == "compacted"


def oldest_revision(node) -> int:
    """The compaction point, as the `compacted` error of a read at revision 1 names it (1: none)."""
    code, body = http(node.port, "GET", "/v1/kv/k?revision=1&serializable=true")
    if code != 400:
        return 1
    return int(body["error"].rsplit(" ", 1)[1])


def test_a_compaction_through_the_log_makes_every_member_answer_compacted_below_it(tmp_path):
    with LocalCluster(os.fspath(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        revisions = [http(leader.port, "PUT", "/v1/kv/k", {"value": f"v{i}"})[1]["revision"] for i in range(6)]
        follower = next(n for n in cluster.nodes if n is not leader)

        # HTTP, on a follower (forwarded to the leader like any write).
        code, body = http(follower.port, "POST", "/v1/compact", {"revision": revisions[2]})
        assert code == 200 and body == {"compact_revision": revisions[2], "revision": revisions[-1]}
        for node in cluster.nodes:
            cluster.wait_node(node, lambda n: compacted_below(n, "k", revisions[1]), "every member to compact")
            code, body = http(node.port, "GET", f"/v1/kv/k?revision={revisions[2]}&serializable=true")
            assert code == 200 and body["kv"]["value"] == "v2"  # the compaction point itself is kept
            code, body = http(node.port, "GET", f"/v1/watch?key=k&start_revision={revisions[1]}")
            assert code == 400 and body["code"] == "compacted", body
            assert f"oldest revision still available is {revisions[2]}" in body["error"]

        # Again at or below the compaction point, or beyond the store: a clear 400.
        code, body = http(leader.port, "POST", "/v1/compact", {"revision": revisions[2]})
        assert code == 400 and body["code"] == "compacted"
        code, body = http(leader.port, "POST", "/v1/compact", {"revision": revisions[-1] + 100})
        assert code == 400 and body["code"] == "future_revision"
        code, body = http(leader.port, "POST", "/v1/compact", {"rev": 3})
        assert code == 400 and body["code"] == "bad_request"

        # The client (over the session) and abcdctl.
        async def by_client() -> dict:
            async with Client(cluster.endpoints) as client:
                answer = await client.compact(revisions[3])
                with pytest.raises(BadRequest) as refused:
                    await client.get("k", revision=revisions[2])
                assert refused.value.code == "compacted"
                return answer

        assert asyncio.run(by_client())["compact_revision"] == revisions[3]
        ctl = subprocess.run(
            [sys.executable, "-m", "abcd.cli", "--endpoints", ",".join(cluster.endpoints), "compact", str(revisions[4])],
            capture_output=True, text=True, timeout=30,
        )
        assert ctl.returncode == 0, ctl.stderr
        assert f"compacted at revision {revisions[4]}" in ctl.stdout
        for node in cluster.nodes:
            cluster.wait_node(node, lambda n: oldest_revision(n) == revisions[4], "every member to compact again")
            assert node.status()["compact_revision"] == revisions[4]

        # A restarted member comes back with the same compaction point (from its log).
        follower.stop()
        follower.start()
        cluster.wait_node(follower, lambda n: oldest_revision(n) == revisions[4], "the restarted member")


def test_the_leader_compacts_by_revision_keeping_the_last_n(tmp_path):
    args = ARGS + ["--auto-compaction-mode", "revision", "--auto-compaction-retention", "20"]
    with LocalCluster(os.fspath(tmp_path), 1, args=args) as cluster:
        leader = cluster.wait_ready()
        last = 0
        for i in range(60):
            last = http(leader.port, "PUT", "/v1/kv/k", {"value": f"v{i}"})[1]["revision"]
        # Compacted to the revision 20 behind, in steps of 20 / 10 revisions.
        wait_for(lambda: oldest_revision(leader) >= last - 20 - 2, "the leader to compact automatically")
        assert oldest_revision(leader) <= last - 20
        code, body = http(leader.port, "GET", f"/v1/kv/k?revision={last - 20}")
        assert code == 200 and body["kv"]["value"] == f"v{59 - 20}"


def test_the_leader_compacts_periodically_keeping_the_last_duration(tmp_path):
    args = ARGS + ["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "2s"]
    with LocalCluster(os.fspath(tmp_path), 1, args=args) as cluster:
        leader = cluster.wait_ready()
        first = http(leader.port, "PUT", "/v1/kv/k", {"value": "early"})[1]["revision"]
        # Writes keep coming; the early revision is forgotten once 2 s (and the tenth
        # of it a sample may lag) have passed, and not before.
        assert oldest_revision(leader) == 1

        def early_forgotten() -> bool:
            http(leader.port, "PUT", "/v1/kv/k", {"value": "late"})
            return oldest_revision(leader) > first

        wait_for(early_forgotten, "the early revision to be compacted", timeout=30)
        code, body = http(leader.port, "GET", "/v1/kv/k?revision=%d" % first)
        assert code == 400 and body["code"] == "compacted"


def test_bad_auto_compaction_settings_are_refused_at_start(tmp_path):
    for mode, retention, message in (
        ("revision", "1h", "a number of revisions"),
        ("periodic", "soon", "a duration like 1h"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "abcd", str(free_port()), "--data-dir", os.fspath(tmp_path / mode),
             "--auto-compaction-mode", mode, "--auto-compaction-retention", retention],
            capture_output=True, text=True, timeout=30,
        )
        assert run.returncode == 2 and message in run.stderr, run.stderr
