"""Outbound: the Send effects of one step, grouped per destination peer.

One core step may send many messages (AppendEntries to every follower, heartbeats
with a ReadIndex round, vote requests...).  They are grouped by `dest` so that each
peer gets one `transport.send(dest, messages)` per batch, which the transport turns
into one websocket frame (performance.md rule 1).  Order per peer is preserved: Raft
tolerates reordering, but the leader's pipelining works best without it.

The core sends InstallSnapshotRequest without the snapshot (it holds no state-machine
bytes); `fill_snapshot` puts the node's newest snapshot in it here, or returns None to
drop it (snapshots.Snapshotter.fill).
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..raft.effects import Send
from ..raft.messages import InstallSnapshotRequest, Message

Deliver = Callable[[int, list[Message]], None]
FillSnapshot = Callable[[InstallSnapshotRequest], InstallSnapshotRequest | None]


def _unfilled(message: InstallSnapshotRequest) -> InstallSnapshotRequest:
    return message


def group_sends(effects: Sequence, fill_snapshot: FillSnapshot = _unfilled) -> dict[int, list[Message]]:
    """{dest: [messages in effect order]} of the Send effects in `effects`."""
    by_dest: dict[int, list[Message]] = {}
    for effect in effects:
        if type(effect) is Send:
            message = effect.message
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

    def __init__(self, deliver: Deliver, fill_snapshot: FillSnapshot = _unfilled) -> None:
        self._deliver = deliver
        self._fill_snapshot = fill_snapshot
        self.messages_sent = 0

    def on_effects(self, effects: Sequence) -> None:
        for dest, messages in group_sends(effects, self._fill_snapshot).items():
            self.messages_sent += len(messages)
            self._deliver(dest, messages)
