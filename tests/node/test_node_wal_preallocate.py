"""The node preallocates its WAL; a failed preallocation is logged and writes go on."""
from __future__ import annotations

import os

from loguru import logger

from node_harness import run_with_node, wait_until


def test_the_node_keeps_its_wal_zero_filled_ahead_of_the_records(tmp_path):
    async def body(local):
        status, _ = await local.call("PUT", "/v1/kv/k", json={"value": "v"})
        assert status == 200
        wal = local.node.wal
        wal._join_filler()
        assert os.path.getsize(wal.segment_paths[-1]) - wal._size >= local.node.config.wal_preallocate_bytes // 2

    run_with_node(tmp_path, body)


def test_a_failed_preallocation_is_logged_once_and_writes_go_on(tmp_path):
    records = []
    sink = logger.add(lambda m: records.append(m.record), level="WARNING")

    async def body(local):
        wal = local.node.wal
        wal.fill_error = "preallocating 1048576 bytes at offset 4096 failed: [Errno 28] No space left on device"
        await wait_until(
            lambda: any(r["extra"].get("event") == "WALPreallocateFailed" for r in records), "the warning"
        )
        assert wal.fill_error is None  # reported, then cleared: logged once
        status, _ = await local.call("PUT", "/v1/kv/k", json={"value": "v"})
        assert status == 200

    try:
        run_with_node(tmp_path, body)
    finally:
        logger.remove(sink)
    warnings = [r for r in records if r["extra"].get("event") == "WALPreallocateFailed"]
    assert len(warnings) == 1
    assert "No space left on device" in warnings[0]["message"]
