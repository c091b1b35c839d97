"""The log stream: the core's Trace effects as log records, events and counters.

Trace names follow the TLA+ actions (BecomeLeader, AdvanceCommitIndex, ...), so the
same names appear in the node's log, on `/v1/events` and in the core's scenario
transcripts.  Role changes and elections are logged at INFO; the events that happen
once per batch or per message (AdvanceCommitIndex, Send, Receive...) at DEBUG, and
those cost ~0.2 µs when DEBUG is off (performance.md rule 8).

`annotate` adds the node's own fields to a trace by name, for what the core cannot
say: it counts ticks and knows no milliseconds (a Timeout gets how long the node
heard nothing, in ms).  The core's traces, and so its transcripts, stay as they are.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ..raft.effects import Trace
from ..raft.record import StepRecord
from .. import logs
from .events import EventHub

LEVELS = {
    "BecomeLeader": "INFO",
    "BecomeFollower": "INFO",
    "BecomeCandidate": "INFO",
    "BecomePreCandidate": "INFO",
    "Timeout": "INFO",
    "ConfigChange": "INFO",
    "TransferLeadership": "INFO",
    "SendTimeoutNow": "INFO",
    "TimeoutNow": "INFO",
    "TransferAborted": "WARNING",
    "LeaderRemoved": "INFO",
    "CheckQuorumFailed": "WARNING",
    "TruncateLog": "INFO",
    "SnapshotNeeded": "WARNING",
    # The core's InstallSnapshot story (raft/snapshot.py) ...
    "SendInstallSnapshot": "INFO",
    "SnapshotAccepted": "INFO",
    "SnapshotStalled": "WARNING",
    "InstallSnapshot": "INFO",
    "IgnoreSnapshot": "INFO",
    "RetainLog": "INFO",
    # ... and the node's (node/snapshots.py): rare, and each says what it cost.
    "SnapshotTaken": "INFO",
    "SnapshotSent": "INFO",
    "SnapshotInstalled": "INFO",
    "ReplicationStalled": "INFO",
    "GrantVote": "INFO",
    "RejectVote": "INFO",
    "LeaderUnreachable": "INFO",
}
# Commits happen once per batch: at INFO, one record a second at most shows the log
# moving without costing a record per batch.
COMMIT_LOG_INTERVAL = 1.0
# The same holds for watchers of /v1/events: at full load a member advances its commit
# index thousands of times a second, and an event each (built, queued and sent to every
# watcher) cost the members a fifth of their write throughput with three dashboards
# open.  So a watcher gets at most one AdvanceCommitIndex per member every 100 ms: the
# latest, with `advances` saying how many it stands for (flush() sends one held back).
HUB_COALESCED = frozenset({"AdvanceCommitIndex"})
HUB_COALESCE_INTERVAL = 0.1


def format_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("term", "role"))


class TraceLog:
    def __init__(
        self,
        logger,
        hub: EventHub,
        *,
        node_id: int,
        on_trace: Callable[[Trace], None] = lambda trace: None,
        clock: Callable[[], float] = time.time,
        annotate: dict[str, Callable[[], dict[str, Any]]] | None = None,
    ) -> None:
        self._annotate = annotate or {}
        self._logger = logger
        self._hub = hub
        self._node_id = node_id
        self._on_trace = on_trace
        self._clock = clock
        self._debug = logs.level_enabled("DEBUG")
        self._last_commit_log = 0.0
        # name -> (time published, advances held back since, latest trace held back or None)
        self._hub_held: dict[str, list] = {}

    def on_record(self, record: StepRecord) -> None:
        """A step's `traces` part."""
        for trace in record.traces:
            self.trace(trace)

    def trace(self, trace: Trace) -> None:
        self._on_trace(trace)
        fields = trace.fields
        annotate = self._annotate.get(trace.name)
        if annotate is not None:
            fields = {**fields, **annotate()}
        level = LEVELS.get(trace.name, "DEBUG")
        if trace.name == "AdvanceCommitIndex" and not self._debug:
            now = self._clock()
            if now - self._last_commit_log >= COMMIT_LOG_INTERVAL:
                self._last_commit_log = now
                level = "INFO"
        if level != "DEBUG" or self._debug:
            self._logger.bind(term=fields.get("term"), role=fields.get("role"), event=trace.name, trace=True).log(
                level, "{}", format_fields(fields)
            )
        if self._hub.active:
            if trace.name in HUB_COALESCED:
                self._coalesce(trace.name, fields)
            else:
                self._publish(trace.name, fields, 1)

    def _coalesce(self, name: str, fields: dict[str, Any]) -> None:
        now = self._clock()
        held = self._hub_held.get(name)
        if held is None:
            held = self._hub_held[name] = [0.0, 0, None]
        held[1] += 1
        if now - held[0] >= HUB_COALESCE_INTERVAL:
            self._publish(name, fields, held[1], now)
            held[0], held[1], held[2] = now, 0, None
        else:
            held[2] = fields

    def flush(self) -> None:
        """Publish the coalesced events held back (called every 100 ms while watched)."""
        now = self._clock()
        for name, held in self._hub_held.items():
            if held[2] is not None and self._hub.active:
                self._publish(name, held[2], held[1], now)
            held[0], held[1], held[2] = now, 0, None

    def _publish(self, name: str, fields: dict[str, Any], advances: int, now: float | None = None) -> None:
        event_fields = {k: _jsonable(v) for k, v in fields.items() if k not in ("term", "role")}
        if name in HUB_COALESCED:
            event_fields["advances"] = advances
        self._hub.publish(
            {
                "type": "trace",
                "time": self._clock() if now is None else now,
                "node": self._node_id,
                "event": name,
                "term": fields.get("term"),
                "role": fields.get("role"),
                "fields": event_fields,
            }
        )

def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return repr(value)


def log_records_to_hub(hub: EventHub, node_name: str):
    """A loguru sink that publishes this node's log records (INFO and up) on the hub.

    Records made from traces are skipped: the hub has them already, as traces.
    """

    def sink(message) -> None:
        record = message.record
        extra = record["extra"]
        if not hub.active or extra.get("trace") or extra.get("node") != node_name:
            return
        hub.publish(
            {
                "type": "log",
                "time": record["time"].timestamp(),
                "level": record["level"].name,
                "event": extra.get("event", "log"),
                "term": extra.get("term"),
                "role": extra.get("role"),
                "message": record["message"],
            }
        )

    return sink
