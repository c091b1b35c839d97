"""The leader's automatic compaction policy (abcd/node/auto_compaction.py), tick by tick."""
from __future__ import annotations

import pytest

from abcd.node.auto_compaction import AutoCompactor, Retention, parse_retention


def test_retention_is_parsed_as_etcd_reads_it():
    assert parse_retention("revision", "1000") == Retention("revision", 1000)
    assert parse_retention("periodic", "1h") == Retention("periodic", 3600.0)
    assert parse_retention("periodic", "30m") == Retention("periodic", 1800.0)
    assert parse_retention("periodic", "90s") == Retention("periodic", 90.0)
    assert parse_retention("periodic", "2") == Retention("periodic", 7200.0)  # a bare number is hours
    assert not parse_retention("periodic", "0").enabled
    with pytest.raises(ValueError, match="number of revisions"):
        parse_retention("revision", "10m")
    with pytest.raises(ValueError, match="a duration like 1h"):
        parse_retention("periodic", "-1h")
    with pytest.raises(ValueError, match="must be one of revision, periodic"):
        parse_retention("hourly", "1")


def tick(c: AutoCompactor, revision: int, compact: int, now: float, *, leading=True, term=2):
    return c.on_tick(revision=revision, compact_revision=compact, now=now, leading=leading, term=term)


def test_revision_mode_keeps_the_last_n_and_compacts_in_tenths():
    c = AutoCompactor(Retention("revision", 100), retry_seconds=5.0)
    assert tick(c, 100, 0, 0.0) is None  # nothing older than the last 100
    assert tick(c, 109, 0, 1.0) is None  # 9 past: less than a tenth of N
    assert tick(c, 110, 0, 1.1) == 10  # a tenth of N past: compact at revision - N
    assert tick(c, 125, 0, 2.0) is None  # that proposal may still be in flight
    assert tick(c, 119, 10, 2.1) is None  # applied at 10; 9 more is less than a tenth
    assert tick(c, 120, 10, 2.2) == 20  # applied: no need to wait for the retry
    assert tick(c, 140, 10, 2.3) is None  # not applied yet
    assert tick(c, 140, 10, 7.3) == 40  # lost, it seems: proposed again after retry seconds


def test_periodic_mode_compacts_at_the_revision_noted_a_period_ago():
    c = AutoCompactor(Retention("periodic", 10.0), retry_seconds=0.5)
    assert tick(c, 5, 0, 0.0) is None  # noted: revision 5 at t=0
    assert tick(c, 8, 0, 1.0) is None  # noted: 8 at t=1
    assert tick(c, 9, 0, 9.9) is None  # nothing is 10 s old yet
    assert tick(c, 12, 0, 10.0) == 5  # the revision of t=0
    assert tick(c, 13, 5, 11.0) == 8  # the revision of t=1


def test_only_a_leader_compacts_and_a_new_term_starts_noting_afresh():
    c = AutoCompactor(Retention("periodic", 10.0), retry_seconds=0.5)
    tick(c, 5, 0, 0.0)
    assert tick(c, 50, 0, 20.0, leading=False) is None
    assert tick(c, 50, 0, 21.0, term=3) is None  # noted 50 at t=21
    assert tick(c, 60, 0, 30.0, term=3) is None
    assert tick(c, 70, 0, 31.0, term=3) == 50
    assert AutoCompactor(Retention("revision", 0), retry_seconds=1).on_tick(
        revision=10**6, compact_revision=0, now=0, leading=True, term=1
    ) is None
