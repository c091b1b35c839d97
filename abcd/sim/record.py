"""A simulated run as one JSON file that the dashboard replays (`--record run.json`).

RunRecorder observes a Cluster (see cluster.py: it hears of each event before it is
handled, each message sent and what the network did with it, each client call, and
each Trace) and writes what a viewer needs, in the dashboard's own vocabulary: one
step per event, with the traces of that step as events, the messages sent in it, and
the state of every member that changed.  docs/dashboard.md, "The recorded run
format", describes the file; FORMAT and VERSION name it.

Recording reads the cluster and never draws from its random streams, so a recorded run
is the same run as the unrecorded one of the same seed.
"""
from __future__ import annotations

import json
from typing import Any

from ..raft.core import RaftCore
from ..raft.message_kinds import describe
from .broken import BROKEN
from .cluster import TICK_MS, Cluster, SimNode, durable_entries_after_snapshot
from .figure8 import stage_figure_8
from .invariants import InvariantViolation
from .runner import ALL_FAULTS, SimulationFailure, run_seed

FORMAT = "abcd-sim-run"
VERSION = 1

# The core's role names, as the dashboard's model spells them.
ROLES = {"follower": "follower", "pre_candidate": "pre-candidate", "candidate": "candidate", "leader": "leader"}
# Traces of the whole cluster, not of one member, that make a step a fault step.
FAULT_TRACES = {"Partition": "partition", "Heal": "heal", "Crash": "crash", "Restart": "restart"}


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (frozenset, set)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


def seconds(ms: float) -> float:
    """Virtual milliseconds as the file's seconds (to the microsecond: shorter text)."""
    return round(ms / 1000.0, 6)


def ms(ticks: int) -> float | int:
    """Ticks as virtual milliseconds (whole numbers written without a fraction)."""
    value = ticks * TICK_MS
    return int(value) if value == int(value) else value


def term_runs(term_at, first: int, last: int) -> list[list[int]]:
    """[[first_index, term], ...]: the runs of equal terms in entries first..last.  Terms
    never decrease along a log, so each run's end is found by binary search."""
    runs = []
    index = first
    while index <= last:
        term = term_at(index)
        lo, hi = index, last  # the run's last index is in [lo, hi]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if term_at(mid) == term:
                lo = mid
            else:
                hi = mid - 1
        runs.append([index, term])
        index = lo + 1
    return runs


def member_state(node: SimNode, options) -> dict:
    """One member in the dashboard's model shape.  A crashed member shows what it holds
    durably (the term, vote, snapshot and log it restarts from), with up false."""
    base = {"id": node.id, "name": f"n{node.id}", "address": None, "last_heard": None, "faults": None, "supervised": None}
    core = node.core
    if not node.up:
        hard = node.durable_hard_state
        snapshot_index = node.snapshot.last_included_index if node.snapshot is not None else 0
        entries = durable_entries_after_snapshot(node)
        last = snapshot_index + len(entries)
        return {
            **base,
            "voter": node.id in core.config.voters,
            "up": False,
            "role": None,
            "term": hard.current_term,
            "voted_for": hard.voted_for,
            "leader": None,
            "commit_index": snapshot_index,
            "applied_index": snapshot_index,
            "last_log_index": last,
            "snapshot_index": snapshot_index,
            "log_terms": term_runs(lambda i: entries[i - snapshot_index - 1].term, snapshot_index + 1, last),
            "election_elapsed_ms": None,
            "election_timeout_ms": None,
            "heartbeat_ms": ms(options.heartbeat_ticks),
            "lease_remaining_ms": None,
            "health": "down",
            "progress": None,
        }
    log = core.log
    voter = node.id in core.config.voters
    leading = core.is_leader()
    role = ROLES.get(core.role, core.role)
    if not voter and role == "follower":
        role = "learner"
    return {
        **base,
        "voter": voter,
        "up": True,
        "role": role,
        "term": core.current_term,
        "voted_for": core.voted_for,
        "leader": core.leader_id,
        "commit_index": core.commit_index,
        "applied_index": node.last_applied,
        "last_log_index": log.last_index,
        "snapshot_index": log.snapshot_index,
        "log_terms": term_runs(log.term_at, log.first_index, log.last_index),
        # A follower's election timer; a leader's counts towards its check-quorum instead.
        "election_elapsed_ms": None if leading else ms(core.election_elapsed),
        "election_timeout_ms": None if leading else ms(core.randomized_election_timeout),
        "heartbeat_ms": ms(options.heartbeat_ticks),
        # How long until the leader checks that a majority still answers it (§6.2).
        "lease_remaining_ms": (
            ms(options.election_ticks - core.election_elapsed) if leading and options.check_quorum else None
        ),
        "health": "ok",
        "progress": (
            {str(p): {"match_index": pr.match_index, "next_index": pr.next_index} for p, pr in sorted(core.progress.items())}
            if leading
            else None
        ),
    }


class RunRecorder:
    """Observes one Cluster and builds the run's steps (see the module docstring)."""

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self.steps: list[dict] = []
        self._last_state: dict[int, dict] = {}
        self._inner_tracer = None
        self._step: dict | None = None
        self._client: tuple[str, int, tuple] | None = None

    # ------------------------------------------------------------------ hooks (cluster.py)

    def attach(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._inner_tracer = cluster.tracer
        cluster.tracer = self.on_trace
        self._open("start", None, {})

    def on_event(self, kind: str, args: tuple) -> None:
        self._close()
        node, detail = None, {}
        if kind in ("tick", "disk", "unreachable"):
            node = args[0]
            if kind == "unreachable":
                detail = {"peer": args[1]}
        elif kind == "deliver":
            m = args[0]
            node = m.dest
            detail = {"from": m.source, "type": describe(m)[0], "term": m.term}
            if not self.cluster.nodes[node].up:
                detail["lost"] = True  # it reaches a crashed member: nobody reads it
        self._open(kind, node, detail)

    def on_send(self, m, delays: list[float]) -> None:
        cluster = self.cluster
        name, entries, success = describe(m)
        record = {
            "time": seconds(cluster.now),
            "from": m.source,
            "to": m.dest,
            "type": name,
            "count": 1,
            "entries": entries,
            "term": m.term,
        }
        if success is not None:
            record["success"] = success
        if delays:
            record["arrives"] = [seconds(cluster.now + d) for d in delays]
        else:
            record["dropped"] = "partition" if (m.source, m.dest) in cluster.network.cut else "loss"
        self._step["messages"].append(record)
        if not delays and record["dropped"] == "loss":
            self._sim_event(m.source, "DropMessage", {"to": m.dest, "type": name})
        elif len(delays) > 1:
            self._sim_event(m.source, "DuplicateMessage", {"to": m.dest, "type": name})

    def on_client(self, node_id: int, what: str, commands: tuple) -> None:
        if self._step["kind"] != "call":  # a staged scenario's own request: a step of its own
            self._close()
            self._open(what, node_id, {"commands": [c.decode(errors="replace") for c in commands]} if commands else {})
            return
        self._client = (what, node_id, commands)

    def on_trace(self, now: float, node_id: int | None, trace) -> None:
        if self._step is not None and trace.name not in ("Send", "Receive"):  # --messages: in "messages"
            self._record_trace(now, node_id, trace)
        if self._inner_tracer is not None:
            self._inner_tracer(now, node_id, trace)

    def _record_trace(self, now: float, node_id: int | None, trace) -> None:
        fault = FAULT_TRACES.get(trace.name)
        if fault is not None and self._step["kind"] != "call":
            # A fault that no scheduled call made (a staged scenario's): a step of its own.
            self._close()
            self._open(fault, node_id, {})
        fields = trace.fields
        term, role = fields.get("term"), fields.get("role")
        if node_id is not None:  # the simulator's own traces (Crash, Restart, SnapshotTaken) lack them
            core = self.cluster.nodes[node_id].core
            term = core.current_term if term is None else term
            role = core.role if role is None else role
        self._step["events"].append(
            {
                "time": seconds(now),
                "node": node_id,
                "event": trace.name,
                "term": term,
                "role": ROLES.get(role, role),
                "fields": {k: jsonable(v) for k, v in fields.items() if k not in ("term", "role")},
            }
        )

    # ------------------------------------------------------------------ steps

    def _sim_event(self, node_id: int, name: str, fields: dict) -> None:
        core = self.cluster.nodes[node_id].core
        self._step["events"].append(
            {
                "time": seconds(self.cluster.now),
                "node": node_id,
                "event": name,
                "term": core.current_term,
                "role": ROLES.get(core.role, core.role),
                "fields": fields,
            }
        )

    def _open(self, kind: str, node: int | None, detail: dict) -> None:
        step = {"step": len(self.steps), "time": seconds(self.cluster.now), "kind": kind, "node": node}
        if detail:
            step["detail"] = detail
        step["events"], step["messages"], step["state"] = [], [], []
        self._step = step
        self._client = None

    def _close(self) -> None:
        step = self._step
        if step is None:
            return
        if step["kind"] == "call":
            self._name_call(step)
        cluster = self.cluster
        options = cluster.options
        changed = []
        for i in cluster.ids:
            state = member_state(cluster.nodes[i], options)
            if self._last_state.get(i) != state:
                self._last_state[i] = state
                changed.append(state)
        step["state"] = changed
        self.steps.append(step)
        self._step = None

    def _name_call(self, step: dict) -> None:
        """A scheduled call is a client's request or a fault: name it by what it did."""
        if self._client is not None:
            what, node_id, commands = self._client
            step["kind"], step["node"] = what, node_id
            if commands:
                step["detail"] = {"commands": [c.decode(errors="replace") for c in commands]}
            return
        for event in step["events"]:
            kind = FAULT_TRACES.get(event["event"])
            if kind is not None:
                step["kind"], step["node"] = kind, event["node"]
                return
        step["kind"] = "noop"  # e.g. a restart with every member up

    def finish(self, violation: InvariantViolation | None = None) -> tuple[list[dict], dict | None]:
        """Close the last step and stop observing; the steps, and the violation record
        (at the step where the rule broke) if there was one."""
        cluster = self.cluster
        self._close()
        cluster.observer = None
        cluster.tracer = self._inner_tracer
        if violation is None:
            return self.steps, None
        last = self.steps[-1]
        return self.steps, {
            "step": last["step"],
            "time": last["time"],
            "invariant": getattr(violation, "invariant", "Safety"),
            "members": list(getattr(violation, "members", ())),
            "message": str(violation),
        }


def record_run(
    seed: int,
    *,
    nodes: int = 3,
    steps: int = 2000,
    faults=ALL_FAULTS,
    broken: str | None = None,
    snapshots: bool | int = True,
    options=None,
    tracer=None,
) -> dict:
    """Run one seed for `steps` events (no liveness phase: the file stays the size asked
    for) and return the recorded run.  With `broken`, the named core of broken.py runs
    and the run stops at the first violation."""
    core_factory = BROKEN[broken] if broken is not None else RaftCore
    recorder = RunRecorder()
    violation = None
    kwargs = {} if options is None else {"options": options}
    try:
        run_seed(
            seed,
            nodes=nodes,
            steps=steps,
            faults=faults,
            core_factory=core_factory,
            tracer=tracer,
            observer=recorder,
            check_liveness=False,
            snapshots=snapshots,
            **kwargs,
        )
    except SimulationFailure as failure:
        violation = failure.__cause__
    cluster = recorder.cluster
    recorded, violation_record = recorder.finish(violation)
    return {
        "format": FORMAT,
        "version": VERSION,
        "scenario": None,
        "seed": seed,
        "nodes": nodes,
        "faults": list(faults),
        "broken": broken,
        "tick_ms": ms(1),
        "snapshot_every": cluster.snapshots.every if cluster.snapshots is not None else None,
        "members": [{"id": i, "name": f"n{i}"} for i in cluster.ids],
        "steps": recorded,
        "violation": violation_record,
    }


def record_figure_8(broken: str | None = None) -> dict:
    """The staged Figure 8 interleaving (figure8.py), with the correct core or a broken
    one (CommitOldTerms loses a committed entry there)."""
    core_factory = BROKEN[broken] if broken is not None else RaftCore
    recorder = RunRecorder()
    violation = None
    try:
        stage_figure_8(core_factory, observer=recorder)
    except InvariantViolation as error:
        violation = error
    cluster = recorder.cluster
    recorded, violation_record = recorder.finish(violation)
    return {
        "format": FORMAT,
        "version": VERSION,
        "scenario": "figure8",
        "seed": cluster.seed,
        "nodes": len(cluster.ids),
        "faults": ["partition", "crash"],
        "broken": broken,
        "tick_ms": ms(1),
        "snapshot_every": None,
        "members": [{"id": i, "name": f"n{i}"} for i in cluster.ids],
        "steps": recorded,
        "violation": violation_record,
    }


def write_run(run: dict, path: str) -> int:
    """Write the run as compact JSON; the number of bytes written."""
    text = json.dumps(run, separators=(",", ":"))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(text)
