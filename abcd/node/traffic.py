"""Messages sent and received, counted per peer and kind for the event stream.

At full load a leader sends thousands of messages a second: nobody can read them one
by one, and one event each would cost the node more than the messages.  So while a
watcher is connected, the outbound sink and the inbound path count them here, per
(peer, kind, success), and `take()` hands the counts to the `messages` event every
100 ms (live_events.py).  While nobody watches, the callers do not call `count` at
all (they check `EventHub.active` first): the cost is then one attribute read per
batch.

Kinds are named by raft/message_kinds.py, as on the dashboard and in recorded runs:
the class names of raft/messages.py, except that an AppendEntries
without entries is a "Heartbeat", and a pre-vote is "PreVote"/"PreVoteResponse".
"""
from __future__ import annotations

from typing import Any, Iterable

from ..raft.message_kinds import describe


class Traffic:
    """Counts since the last `take()`: {(peer, kind, success): [count, entries]}."""

    def __init__(self) -> None:
        self._sent: dict[tuple, list[int]] = {}
        self._received: dict[tuple, list[int]] = {}

    def count_sent(self, dest: int, messages: Iterable) -> None:
        _count(self._sent, dest, messages)

    def count_received(self, source: int, messages: Iterable) -> None:
        _count(self._received, source, messages)

    def take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(sent, received) since the last call, as the `messages` event lists them."""
        sent, self._sent = self._sent, {}
        received, self._received = self._received, {}
        return _records(sent, "to"), _records(received, "from")

    def clear(self) -> None:
        self._sent = {}
        self._received = {}


def _count(counts: dict[tuple, list[int]], peer: int, messages: Iterable) -> None:
    for message in messages:
        kind, entries, success = describe(message)
        key = (peer, kind, success)
        total = counts.get(key)
        if total is None:
            counts[key] = [1, entries]
        else:
            total[0] += 1
            total[1] += entries


def _records(counts: dict[tuple, list[int]], peer_field: str) -> list[dict[str, Any]]:
    return [
        {peer_field: peer, "type": kind, "count": count, "entries": entries, "success": success}
        for (peer, kind, success), (count, entries) in sorted(counts.items(), key=_order)
    ]


def _order(item) -> tuple:
    """By peer, then kind; a kind's successful answers before its failed ones."""
    (peer, kind, success), _ = item
    return peer, kind, success is False
