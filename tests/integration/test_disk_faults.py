"""Disks that say no, on real node processes: an fsync that fails (EIO), a write that
comes up short and then fails (EIO), a disk that fills up (ENOSPC, injected with the
hidden --disk-fault flag, and for real on a small tmpfs).

The promise under test (docs/storage.md, "Disk faults"): the member stops (exit 1,
naming the failed call), it never acknowledged a write it had not made durable, and
once the fault is gone and it is restarted, every acknowledged write is there.
"""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from abcd.client import Client, ClientError
from abcd.localcluster import LocalCluster, NodeProcess, free_port, wait_for

pytestmark = pytest.mark.integration

FAST = ["--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING"]
# Start-up (bootstrap, the first election, meta.json, the WAL's first records) takes
# fewer calls than this: the fault trips while the client writes, after some acks.
AFTER = 30


async def write_until_refused(node: NodeProcess, value_bytes: int, limit: int = 2000):
    """Put k0, k1, ... one at a time until a put fails because the node stopped:
    (acknowledged keys, the key of the failed put, its error)."""
    acked = []
    async with Client([node.address], timeout=1.5) as client:
        for i in range(limit):
            try:
                await client.put(f"k{i}", f"{i}:" + "v" * value_bytes)
            except ClientError as error:
                if node.running:
                    continue  # slow, on a busy machine, but not the fault: not acknowledged, go on
                return acked, f"k{i}", error
            acked.append(f"k{i}")
    raise AssertionError(f"{limit} writes were acknowledged: the disk fault never tripped")


def without_disk_fault(args: list[str]) -> list[str]:
    """The arguments with the fault cleared: the disk works again."""
    if "--disk-fault" not in args:
        return args
    at = args.index("--disk-fault")
    return args[:at] + args[at + 2 :]


async def read_all(address: str, keys) -> dict:
    async with Client([address], timeout=10.0) as client:
        return {key: await client.get(key) for key in keys}


def check_fail_stop(node: NodeProcess, acked, refused_key, error, *, says: str) -> None:
    """The member exited 1 naming the failure; restarted without the fault, it has every
    acknowledged write and takes new ones."""
    assert len(acked) >= 3, "the fault tripped during start-up: raise AFTER"
    assert node.proc.wait(20) == 1
    output = node.output(20000)
    assert "fatal error, stopping the node" in output and says in output, output
    assert "restart the node to recover from disk" in output
    node.args = without_disk_fault(node.args)
    node.start()
    wait_for(node.healthy, "the restarted node to serve", 20)
    found = asyncio.run(read_all(node.address, [*acked, refused_key]))
    lost = [key for key in acked if found[key] is None]
    assert not lost, f"acknowledged writes lost after the restart: {lost}"
    if found[refused_key] is not None:
        # It reached the WAL before the fsync failed: the client must not have been told
        # it was not applied.
        assert error.outcome_unknown, f"{refused_key} was refused as not applied, yet it is there: {error}"
    asyncio.run(write_some(node.address, 3))


async def write_some(address: str, count: int) -> None:
    async with Client([address], timeout=10.0) as client:
        for i in range(count):
            await client.put(f"after/{i}", "ok")


@pytest.mark.parametrize(
    "fault, says",
    [
        (f"fsync-eio:after={AFTER}", "fsync of the WAL in"),
        (f"write-eio:after={AFTER}", "[Errno 5] Input/output error (injected disk fault write-eio"),
        (f"enospc:after={AFTER}", "[Errno 28] No space left on device (injected disk fault enospc"),
    ],
)
def test_a_failing_disk_stops_the_member_and_loses_no_acknowledged_write(tmp_path, fault, says):
    node = NodeProcess(free_port(), str(tmp_path / "n1"), ["--name", "n1", *FAST, "--disk-fault", fault]).start()
    try:
        wait_for(node.healthy, "the node to serve", 20)
        acked, refused_key, error = asyncio.run(write_until_refused(node, 2000))
        check_fail_stop(node, acked, refused_key, error, says=says)
    finally:
        node.kill()


def test_a_leader_whose_fsync_fails_stops_and_the_cluster_goes_on(tmp_path):
    # n1 bootstraps, so it leads; its disk fails once the others joined and writes ran.
    fault = ["--disk-fault", "fsync-eio:after=120"]
    cluster = LocalCluster(str(tmp_path), 0, args=FAST)
    leader = cluster.new_node(args=fault)
    try:
        wait_for(leader.healthy, "the first node to bootstrap", 20)
        for _ in range(2):
            cluster.new_node(join=leader.address)
        cluster.wait_ready(30)

        async def write_through_the_failure():
            acked, after_failure = [], 0
            async with Client(cluster.endpoints, timeout=10.0) as client:
                for i in range(5000):
                    try:
                        await client.put(f"k{i}", str(i))
                    except ClientError:
                        continue
                    acked.append(f"k{i}")
                    after_failure += not leader.running
                    if after_failure >= 20:
                        return acked
            raise AssertionError(f"{len(acked)} writes acknowledged, {after_failure} after the leader's failure")

        acked = asyncio.run(write_through_the_failure())
        assert leader.proc.wait(20) == 1
        assert "fsync of the WAL in" in leader.output(20000)
        found = asyncio.run(read_all(cluster.nodes[1].address, acked))
        assert not [key for key in acked if found[key] is None]
        leader.args = without_disk_fault(leader.args)
        leader.start()
        cluster.wait_ready(30)
        found = asyncio.run(read_all(leader.address, acked))
        assert not [key for key in acked if found[key] is None], "the restarted member lost writes"
    finally:
        cluster.kill_all()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs: a disk that really fills up.  Mounting needs root (CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
            check=True, capture_output=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {error} {detail.decode(errors='replace')}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=10)


def test_a_disk_that_really_fills_up_stops_the_member_and_loses_nothing(small_tmpfs):
    node = NodeProcess(free_port(), str(small_tmpfs / "n1"), ["--name", "n1", *FAST]).start()
    try:
        wait_for(node.healthy, "the node to serve", 20)
        acked, refused_key, error = asyncio.run(write_until_refused(node, 20_000))
        # Freeing space clears the fault: the tmpfs grows to 16 MiB.
        subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True, timeout=10)
        check_fail_stop(node, acked, refused_key, error, says="[Errno 28] No space left on device")
    finally:
        node.kill()
