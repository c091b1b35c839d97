"""Progress: the leader's view of one follower (probe / replicate, thesis §10.2.1)."""
from __future__ import annotations

from abcd.raft.progress import PROBE, REPLICATE, Progress


def replicating(match: int = 5, max_inflight: int = 3) -> Progress:
    pr = Progress(match + 1, max_inflight)
    pr.update(match)
    pr.become_replicate()
    return pr


def test_new_progress_probes_from_next_index():
    pr = Progress(7, 4)
    assert (pr.state, pr.match_index, pr.next_index) == (PROBE, 0, 7)
    assert not pr.paused()


def test_probe_sends_one_request_at_a_time():
    """In PROBE the leader does not know where the logs match: one guess at a time."""
    pr = Progress(7, 4)
    pr.sent(6, tick=0)
    assert pr.paused()
    assert pr.next_index == 7  # a probe does not advance next_index
    pr.update(0)  # any answer unpauses, even one that is not news
    assert not pr.paused()


def test_update_reports_news_and_keeps_next_after_match():
    pr = Progress(3, 4)
    assert pr.update(5) is True
    assert (pr.match_index, pr.next_index) == (5, 6)
    assert pr.update(4) is False  # stale: match_index never goes back
    assert pr.match_index == 5


def test_become_replicate_resumes_after_match():
    pr = Progress(10, 4)
    pr.update(3)
    pr.become_replicate()
    assert (pr.state, pr.next_index) == (REPLICATE, 4)


def test_replicate_streams_and_tracks_inflight_window():
    """In REPLICATE the leader sends optimistically, advancing next_index, with at most
    max_inflight requests unanswered."""
    pr = replicating(match=5, max_inflight=3)
    for last in (6, 8, 9):
        assert not pr.paused()
        pr.sent(last, tick=1)
    assert pr.next_index == 10 and pr.paused()
    pr.update(8)  # acknowledges the first two requests
    assert len(pr.inflight) == 1 and not pr.paused()
    assert pr.next_index == 10


def test_become_probe_forgets_inflight_and_restarts_after_match():
    pr = replicating(match=5)
    pr.sent(7, tick=1)
    pr.become_probe()
    assert (pr.state, pr.next_index, len(pr.inflight), pr.paused()) == (PROBE, 6, 0, False)


def test_stalled_after_patience_ticks_without_an_answer():
    """Raft tolerates lost messages: an unanswered request is presumed lost after a while."""
    pr = replicating(match=5)
    assert not pr.stalled(100, 10)  # nothing in flight
    pr.sent(6, tick=20)
    pr.sent(7, tick=25)
    assert not pr.stalled(29, 10)
    assert pr.stalled(30, 10)  # the oldest request went out at tick 20
    pr.update(6)
    assert not pr.stalled(30, 10) and pr.stalled(35, 10)
