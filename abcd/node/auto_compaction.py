"""Automatic compaction: the leader proposes `{"op": "compact", "revision": R}`.

The store forgets history only when a compact command is applied (besides its own
bound, `history_limit`: docs/kv.md), so that every member forgets the same revisions
at the same log index.  Deciding when is a matter of time or of counting revisions,
which only the leader does, as with lease expiry (leases.py); `--auto-compaction-mode`
picks one of etcd's two policies:

* `revision`, retention N: keep the last N revisions.  Once the store's revision is
  N + N/10 past the compaction point, compact at `revision - N`, so that the history
  holds between N and about 1.1 N revisions and a compaction is proposed every N/10
  writes rather than at each one.
* `periodic`, retention D (`1h`, `30m`, `90s`, or a bare number of hours as etcd
  reads it): keep the history of the last D.  The leader notes its revision every
  D/10 and compacts at the revision it noted D ago, so the history covers between D
  and 1.1 D of time.  A new leader starts noting afresh: its first compaction comes
  D after it took over (history is never forgotten early, only late).

Nothing is proposed again while a proposal may still be in flight: until it is
applied, or for `retry` seconds (it may have been lost with a leader change); a
failed one (a compaction raced by another) is simply outrun by the next.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

MODES = ("revision", "periodic")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 3600.0}


@dataclass(frozen=True, slots=True)
class Retention:
    mode: str
    # Revisions (mode revision) or seconds (mode periodic); 0: no automatic compaction.
    amount: float

    @property
    def enabled(self) -> bool:
        return self.amount > 0


def parse_retention(mode: str, text: str) -> Retention:
    """`--auto-compaction-mode` and `--auto-compaction-retention`; ValueError says what is wrong."""
    if mode not in MODES:
        raise ValueError(f"--auto-compaction-mode must be one of {', '.join(MODES)}, got {mode!r}")
    text = str(text).strip()
    if mode == "revision":
        if not text.isdigit():
            raise ValueError(f"--auto-compaction-retention in revision mode is a number of revisions, got {text!r}")
        return Retention(mode, int(text))
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"--auto-compaction-retention in periodic mode is a duration like 1h, 30m or 90s "
            f"(a bare number is hours), got {text!r}"
        )
    return Retention(mode, float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class AutoCompactor:
    """What the leader proposes, tick by tick; pure bookkeeping (the node proposes)."""

    def __init__(self, retention: Retention, *, retry_seconds: float) -> None:
        self.retention = retention
        self.retry_seconds = retry_seconds
        self._term: int | None = None  # the term we lead in, None when not leading
        self._times: list[float] = []  # periodic: when each sample was noted
        self._revisions: list[int] = []  # periodic: the store's revision then
        self._quiet_until = 0.0  # a proposal may be in flight until then...
        self._proposed = 0  # ...unless the compaction point reached it

    def on_tick(self, *, revision: int, compact_revision: int, now: float, leading: bool, term: int) -> int | None:
        """The revision to compact at now, or None."""
        if not self.retention.enabled or not leading:
            self._term = None
            self._times, self._revisions = [], []
            return None
        if term != self._term:
            self._term = term
            self._times, self._revisions = [], []
            self._quiet_until = 0.0
        if self.retention.mode == "revision":
            target = self._by_revision(revision, compact_revision)
        else:
            target = self._by_time(revision, compact_revision, now)
        if target is None or (now < self._quiet_until and compact_revision < self._proposed):
            return None
        self._quiet_until = now + self.retry_seconds
        self._proposed = target
        return target

    def _by_revision(self, revision: int, compact_revision: int) -> int | None:
        keep = int(self.retention.amount)
        target = revision - keep
        if target > compact_revision and target - compact_revision >= max(1, keep // 10):
            return target
        return None

    def _by_time(self, revision: int, compact_revision: int, now: float) -> int | None:
        period = self.retention.amount
        if not self._times or now - self._times[-1] >= period / 10:
            self._times.append(now)
            self._revisions.append(revision)
        # The newest sample at least `period` old: everything written since must stay.
        i = bisect_right(self._times, now - period)
        if i == 0:
            return None
        target = self._revisions[i - 1]
        del self._times[: i - 1], self._revisions[: i - 1]
        return target if target > compact_revision else None
