"""Snapshots in a whole in-process node: taken as it applies, started from after a
restart, a leader's installed (built by hand here), a malformed one refused."""
from __future__ import annotations

import asyncio
import os

from abcd.kv import KVStore
from abcd.node.membership import MemberInfo, encode_context
from abcd.node.snapshot_format import encode_wire
from abcd.raft.messages import InstallSnapshotRequest
from abcd.storage import load_latest_snapshot
from node_harness import LocalNode, wait_until


def run(body, timeout: float = 30.0) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout))


async def started(data_dir: str, **options) -> LocalNode:
    return await LocalNode(data_dir, **options).start()


def snap_files(data_dir: str) -> list[str]:
    snap_dir = os.path.join(data_dir, "snap")
    return sorted(os.listdir(snap_dir)) if os.path.isdir(snap_dir) else []


def test_a_node_takes_snapshots_as_it_applies_and_restarts_from_the_newest(tmp_path):
    data_dir = os.fspath(tmp_path / "node")

    async def body():
        n = await started(data_dir, snapshot_count=20, snapshot_catchup_entries=5, max_snapshots=2)
        try:
            for i in range(60):
                status, _ = await n.call("PUT", f"/v1/kv/k{i}", json={"value": f"v{i}"})
                assert status == 200
            await wait_until(lambda: n.node.snapshots.taken >= 2 and not n.node.snapshots.in_progress, "two snapshots")
            _, status = await n.call("GET", "/v1/status")
            assert status["snapshot_index"] == n.node.snapshots.newest.index - 5 > 0
            assert len(snap_files(data_dir)) == 2  # max_snapshots
            async with n.http.get(n.base + "/metrics") as reply:
                metrics = await reply.text()
            assert 'abcd_snapshots_taken_total{node="%s"} %d.0' % (n.node.config.name, n.node.snapshots.taken) in metrics
            assert "abcd_snapshot_seconds_total" in metrics and "abcd_snapshots_installed_total" in metrics
            name, address = n.node.config.name, n.node.config.advertise
            newest = n.node.snapshots.newest.index
        finally:
            await n.stop()

        n = await started(data_dir, snapshot_count=20, snapshot_catchup_entries=5)
        try:
            # Started from the snapshot: the log begins after it, the store holds its keys.
            assert n.node.core.log.snapshot_index >= newest
            assert n.node.snapshots.newest.index >= newest
            for i in (0, 31, 59):
                status, got = await n.call("GET", f"/v1/kv/k{i}")
                assert status == 200 and got["kv"]["value"] == f"v{i}"
            # The member table came back from the snapshot (the seed entry is long compacted).
            (member,) = n.node.membership.members.values()
            assert n.node.membership.members == {1: MemberInfo(name, address, join_id=member.join_id)}
            assert member.join_id  # drawn at bootstrap, kept through the snapshot
        finally:
            await n.stop()

    run(body)


def leader_data(index: int, keys: dict[str, str], members: dict[int, MemberInfo]) -> bytes:
    store = KVStore()
    for i, (key, value) in enumerate(keys.items(), start=1):
        store.apply({"op": "put", "key": key, "value": value, "lease": 0}, index=i)
    store.mark_applied(index)
    return encode_wire(encode_context(members, max(members) + 1), store.snapshot())


def test_a_node_installs_a_leaders_snapshot_and_restarts_from_it(tmp_path):
    data_dir = os.fspath(tmp_path / "node")

    async def body():
        n = await started(data_dir)
        try:
            await n.call("PUT", "/v1/kv/mine", json={"value": "before"})
            node = n.node
            index = node.core.commit_index + 100
            members = {1: MemberInfo(node.config.name, node.config.advertise), 2: MemberInfo("leader", "127.0.0.1:1")}
            data = leader_data(index, {"a": "from-leader"}, members)
            term = node.core.current_term + 1
            node._on_frame(2, [InstallSnapshotRequest(term, 2, 1, index, term, frozenset({1, 2}), frozenset(), data)])
            await wait_until(lambda: node.snapshots.installed == 1, "the snapshot to be installed and durable")
            assert node.store.applied_index == index and node.core.log.snapshot_index == index
            assert node.store.get("a")["value"] == "from-leader" and node.store.get("mine") is None
            assert node.membership.peers() == {2: "127.0.0.1:1"}  # from the snapshot's header
            loaded = load_latest_snapshot(data_dir)
            assert (loaded.index, loaded.term) == (index, term)
            assert node.snapshots.newest.index == index and node.snapshots.newest.data is data
            _, status = await n.call("GET", "/v1/status")
            assert status["snapshot_index"] == index and status["applied_index"] == index
        finally:
            await n.stop()

        n = await started(data_dir, wait_healthy=False)  # node 2 is not there to elect
        try:
            assert n.node.store.applied_index == index and n.node.store.get("a")["value"] == "from-leader"
            assert n.node.core.log.snapshot_index == index and n.node.membership.peers() == {2: "127.0.0.1:1"}
        finally:
            await n.stop()

    run(body)


def test_a_malformed_snapshot_is_refused_and_the_node_keeps_serving(tmp_path):
    async def body():
        n = await started(os.fspath(tmp_path / "node"))
        try:
            await n.call("PUT", "/v1/kv/mine", json={"value": "kept"})
            node = n.node
            index = node.core.commit_index + 100
            bad = b'{"format":"abcd-node-snapshot","version":1,"members":null}\n{"format":"abcd-kv"'
            node._on_frame(2, [InstallSnapshotRequest(node.core.current_term + 1, 2, 1, index, 9, frozenset({1, 2}), data=bad)])
            assert node.snapshots.refused == 1
            status, got = await n.call("PUT", "/v1/kv/after", json={"value": "ok"})
            assert status == 200 and node.is_leader()  # the core never saw it
            status, got = await n.call("GET", "/v1/kv/mine")
            assert status == 200 and got["kv"]["value"] == "kept"
        finally:
            await n.stop()

    run(body)
