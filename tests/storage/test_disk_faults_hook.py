"""The disk fault hook behind the hidden --disk-fault flag: what each SPEC means, and
that a WAL whose disk fails refuses everything after and leaves no half record."""
from __future__ import annotations

import errno
import time

import pytest

from abcd.raft.effects import Persist
from abcd.raft.messages import Entry, HardState
from abcd.storage import WAL, StorageError, diskfaults, files, wal


@pytest.fixture
def arm():
    yield diskfaults.arm
    diskfaults.disarm()


def entries(first: int, last: int) -> tuple[Entry, ...]:
    return tuple(Entry(1, i, b"value-%d" % i) for i in range(first, last + 1))


@pytest.mark.parametrize(
    "spec, fault",
    [
        ("fsync-eio", diskfaults.DiskFault("fsync-eio", after=0)),
        ("write-eio:after=7", diskfaults.DiskFault("write-eio", after=7)),
        ("enospc:after=0", diskfaults.DiskFault("enospc", after=0)),
        ("fsync-delay:ms=300", diskfaults.DiskFault("fsync-delay", delay_ms=300)),
    ],
)
def test_specs_parse(spec, fault):
    assert diskfaults.parse(spec) == fault


@pytest.mark.parametrize(
    "spec, says",
    [
        ("fsync-slow", "unknown disk fault 'fsync-slow'"),
        ("fsync-eio:ms=3", "unknown parameter 'ms'"),
        ("enospc:after=x", "after must be an integer"),
        ("write-eio:after=-1", "after must be >= 0"),
        ("fsync-delay", "needs ms=MILLISECONDS"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, says):
    with pytest.raises(ValueError, match=says):
        diskfaults.parse(spec)


def test_unarmed_nothing_is_replaced():
    import os

    assert files.os is os and wal.os is os and diskfaults.armed() is None


def test_a_write_that_trips_the_fault_is_short_and_every_later_one_fails(arm, tmp_path):
    faulty = arm("enospc:after=1")
    path = tmp_path / "f"
    with open(path, "wb") as f:
        assert files.os.write(f.fileno(), b"abcd") == 4
        assert files.os.write(f.fileno(), b"abcd") == 2  # short: the disk filled up mid-write
        with pytest.raises(OSError) as refused:
            files.os.write(f.fileno(), b"abcd")
    assert refused.value.errno == errno.ENOSPC and faulty.tripped
    assert path.read_bytes() == b"abcdab"


def test_a_wal_write_cut_short_leaves_no_half_record_and_refuses_everything_after(arm, tmp_path):
    log, _ = WAL.open(tmp_path)
    log.write(Persist(1, HardState(1, 1), entries(1, 3)))
    log.close()
    arm("write-eio:after=0")
    log, _ = WAL.open(tmp_path)  # opening an existing WAL writes nothing
    with pytest.raises(StorageError, match=r"Input/output error \(injected disk fault write-eio"):
        log.write(Persist(2, None, entries(4, 6)))
    with pytest.raises(StorageError, match="refuses writes since an earlier failure"):
        log.sync()
    log.close()
    diskfaults.disarm()
    log, recovered = WAL.open(tmp_path)
    log.close()
    assert recovered.last_index == 3  # the half record was cut off, not replayed or reported as damage


def test_a_failed_fsync_fails_the_wal(arm, tmp_path):
    log, _ = WAL.open(tmp_path)
    arm("fsync-eio")
    log.write(Persist(1, HardState(1, 1), entries(1, 1)))
    with pytest.raises(StorageError, match=r"fsync of the WAL .* Input/output error"):
        log.sync()
    with pytest.raises(StorageError, match="refuses writes since an earlier failure"):
        log.write(Persist(2, None, entries(2, 2)))
    log.close()


def test_a_slow_disk_delays_each_fsync(arm, tmp_path):
    log, _ = WAL.open(tmp_path)
    arm("fsync-delay:ms=50")
    log.write(Persist(1, HardState(1, 1), entries(1, 1)))
    started = time.monotonic()
    log.sync()
    assert time.monotonic() - started >= 0.05
    log.close()


def test_the_node_flag_is_hidden_and_a_bad_spec_is_a_usage_error():
    from abcd.__main__ import UsageError, build_parser, plan

    parser = build_parser()
    assert "--disk-fault" not in parser.format_help()
    with pytest.raises(UsageError, match="--disk-fault: unknown disk fault 'fsync-slow'"):
        plan(parser.parse_args(["8080", "--disk-fault", "fsync-slow"]))
