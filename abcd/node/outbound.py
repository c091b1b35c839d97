"""Outbound: the `messages` part of one step record, grouped per destination peer.

One core step may send many messages (AppendEntries to every follower, heartbeats
with a ReadIndex round, vote requests...).  They are grouped by `dest` so that each
peer gets one `transport.send(dest, messages)` per batch, which the transport turns
into one websocket frame (performance.md rule 1).  Order per peer is preserved: Raft
tolerates reordering, but the leader's pipelining works best without it.

The core sends InstallSnapshotRequest without the snapshot (it holds no state-machine
bytes); `fill_snapshot` puts the node's newest snapshot in it here, or returns None to
drop it (snapshots.Snapshotter.fill).

While someone watches the event stream (`hub.active`), each batch is also counted in
`traffic` (traffic.py) before it goes to the faults and the transport: what the core
sent, whether or not a fault then drops it.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..raft.record import StepRecord
from ..raft.messages import InstallSnapshotRequest, Message
from .events import EventHub
from .traffic import Traffic

Deliver = Callable[[int, list[Message]], None]
FillSnapshot = Callable[[InstallSnapshotRequest], InstallSnapshotRequest | None]


def _unfilled(message: InstallSnapshotRequest) -> InstallSnapshotRequest:
    return message


def group_sends(messages: Sequence[Message], fill_snapshot: FillSnapshot = _unfilled) -> dict[int, list[Message]]:
    """{dest: [messages in their order]} of a step's `messages` part."""
    by_dest: dict[int, list[Message]] = {}
    for message in messages:
        if type(message) is InstallSnapshotRequest:
            message = fill_snapshot(message)
            if message is None:
                continue
        group = by_dest.get(message.dest)
        if group is None:
            by_dest[message.dest] = [message]
        else:
            group.append(message)
    return by_dest


class Outbound:
    """Hands each batch's messages to `deliver(dest, messages)`, one call per peer."""

    def __init__(
        self,
        deliver: Deliver,
        fill_snapshot: FillSnapshot = _unfilled,
        *,
        hub: EventHub | None = None,
        traffic: Traffic | None = None,
    ) -> None:
        self._deliver = deliver
        self._fill_snapshot = fill_snapshot
        self._hub = hub
        self._traffic = traffic
        self.messages_sent = 0

    def on_record(self, record: StepRecord) -> None:
        """A step's `messages` part."""
        if not record.messages:
            return
        hub = self._hub
        traffic = self._traffic if hub is not None and hub.active else None
        for dest, messages in group_sends(record.messages, self._fill_snapshot).items():
            self.messages_sent += len(messages)
            if traffic is not None:
                traffic.count_sent(dest, messages)
            self._deliver(dest, messages)
