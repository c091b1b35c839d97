"""A member that lost its data dir must never come back under its old identity: it
forgot the votes it cast and the log it acknowledged.  On real node processes: the
wiped node's join at its old address is refused with a clear error (exit 1), the
cluster keeps its members; once the old member is removed, the node joins as a new
member and catches up."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from abcd.client import Client
from abcd.localcluster import LocalCluster, http

pytestmark = pytest.mark.integration

FAST = ["--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING"]


def test_a_wiped_member_is_refused_its_old_identity_and_joins_as_a_new_member(tmp_path):
    with LocalCluster(str(tmp_path), 3, args=FAST) as cluster:
        leader = cluster.wait_ready()

        async def write(prefix: str, count: int) -> None:
            async with Client(cluster.endpoints, timeout=10.0) as client:
                for i in range(count):
                    await client.put(f"{prefix}/{i}", str(i))

        asyncio.run(write("before", 20))
        lost = next(n for n in cluster.nodes if n is not leader)
        old_id = lost.status()["id"]
        lost.kill()
        shutil.rmtree(lost.data_dir)

        lost.start(join=leader.address)
        assert lost.proc.wait(30) == 1
        output = lost.output(8000)
        assert f"already member {old_id}" in output, output
        assert "must not rejoin under its old identity" in output and f"DELETE /v1/members/{old_id}" in output
        code, members = http(leader.port, "GET", "/v1/members")
        assert code == 200 and old_id in [m["id"] for m in members["members"]]

        shutil.rmtree(lost.data_dir)  # the refused node's node.log
        code, _ = http(leader.port, "DELETE", f"/v1/members/{old_id}")
        assert code == 200
        lost.start(join=leader.address)
        cluster.wait_ready(30)
        new_id = lost.status()["id"]
        assert new_id != old_id
        asyncio.run(write("after", 5))

        async def read_on_new_member() -> list[str]:
            async with Client([lost.address], timeout=10.0) as client:
                return [k for k in [f"before/{i}" for i in range(20)] if await client.get(k) is None]

        assert not asyncio.run(read_on_new_member())
