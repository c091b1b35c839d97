"""One chaos run from start to verdict.

    start the cluster -> clients and nemesis together for the run's duration
    -> heal every fault -> kill -9 every member and start them all again
    -> read every key linearizably (recorded in the history) -> check the history

The verdict is a pass only when every key's history is proven linearizable (an
inconclusive check is not a pass), no acknowledged write is lost and every final read
succeeded.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

from . import report, schedule
from .cluster import ChaosCluster, ClusterError
from .nemesis import SETTLE_TIMEOUT, FaultEvent, Nemesis
from .soak import Sampler
from .options import RunOptions
from .progress import Progress
from .verdict import lost_writes, verdicts
from .workload import Workload, final_reads

from abcd.check import HistoryRecorder  # noqa: E402  (on sys.path through .cluster)

FINAL_READ_TIMEOUT = 10.0


@dataclass
class RunResult:
    seed: int
    passed: bool
    verdict: str  # "linearizable", "not linearizable", "inconclusive", "error"
    outcomes: Counter
    events: list[FaultEvent]
    keys: int = 0
    lost: int = 0
    final_read_failures: int = 0
    error: str | None = None
    history_file: str | None = None
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # seen by the nemesis
    old_identity_refused: int = 0
    resources: dict | None = None  # the soak's samples: member -> metric -> [(t, value)]

    def summary(self, opts: RunOptions) -> dict:
        by_kind = Counter(e.kind for e in self.events)
        return {
            "seed": self.seed,
            "nodes": opts.nodes,
            "duration": opts.duration,
            "unsafe_stale_reads": opts.unsafe_stale_reads,
            "passed": self.passed,
            "verdict": self.verdict,
            "error": self.error,
            "operations": {f"{kind} {outcome}": n for (kind, outcome), n in sorted(self.outcomes.items())},
            "operations_total": sum(self.outcomes.values()),
            "unknown": sum(n for (_, outcome), n in self.outcomes.items() if outcome == "unknown"),
            "faults": [e.as_dict() for e in self.events],
            "faults_by_kind": dict(sorted(by_kind.items())),
            "fault_errors": sum(1 for e in self.events if e.error),
            "kill_cycles": by_kind.get("kill", 0),
            "old_identity_refused": self.old_identity_refused,
            "violations": self.violations,
            "resources": self.resources,
            "keys": self.keys,
            "lost_writes": self.lost,
            "final_read_failures": self.final_read_failures,
            "history_file": self.history_file,
            "replay": opts.replay(),
        }


async def _traffic(cluster: ChaosCluster, opts: RunOptions, recorder: HistoryRecorder, started: float):
    stop_at = started + opts.duration
    workload = Workload(cluster.addresses, recorder, seed=opts.seed, workers=opts.workers,
                        readers_per_node=opts.readers_per_node, keys=opts.keys, ops_per_key=opts.ops_per_key,
                        timeout=opts.timeout, ssl=cluster.ssl)
    nemesis = Nemesis(cluster, schedule.draw(opts.seed, opts.faults, opts.election_timeout_ms / 1000), started)
    progress = Progress(opts.duration, every=opts.progress_every)
    tasks = [asyncio.create_task(workload.run(stop_at)), asyncio.create_task(nemesis.run(stop_at))]
    sampler = Sampler(cluster, opts.sample_every, started) if opts.sample_every else None
    if sampler is not None:
        tasks.append(asyncio.create_task(sampler.run(stop_at)))
    try:
        while not all(t.done() for t in tasks):
            running = nemesis.running.detail if nemesis.running else None
            progress.update(workload.done, len(nemesis.events), running)
            await asyncio.wait(tasks, timeout=0.5)
        for t in tasks:
            t.result()  # an error in either is the run's error
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        progress.close()
    return workload, nemesis, sampler


async def _end(cluster: ChaosCluster, nemesis: Nemesis) -> None:
    """Heal, then restart every member at once (kill -9: nothing flushed on purpose)."""
    await nemesis.heal()
    await asyncio.to_thread(cluster.wait_ready, SETTLE_TIMEOUT)
    for node in cluster.nodes:
        cluster.kill(node)
    for node in cluster.nodes:
        cluster.start(node)
    await asyncio.to_thread(cluster.wait_ready, SETTLE_TIMEOUT)


async def run(opts: RunOptions, out=print) -> RunResult:
    root = opts.data_dir or tempfile.mkdtemp(prefix="abcd-chaos-")
    started = [time.monotonic()]
    # Times in the history, in the checker's explanations and in the fault list count
    # from when the cluster was up and the traffic began.
    recorder = HistoryRecorder(clock=lambda: time.monotonic() - started[0])
    out(f"chaos run: {opts.nodes} members, {opts.duration:g} s, seed {opts.seed}"
        + (" (drawn)" if opts.seed_drawn else "") + f", faults: {', '.join(opts.faults)}"
        + ("; PLANTED BUG: --unsafe-stale-reads" if opts.unsafe_stale_reads else ""))
    result = RunResult(opts.seed, False, "error", Counter(), [])
    final: dict = {}
    workload = nemesis = sampler = None
    try:
        with ChaosCluster(root, opts.nodes, opts.node_args, tls=opts.tls) as cluster:
            started[0] = time.monotonic()
            workload, nemesis, sampler = await _traffic(cluster, opts, recorder, started[0])
            out(f"traffic over after {time.monotonic() - started[0]:.1f} s; healing and restarting every member")
            await _end(cluster, nemesis)
            final = await final_reads(
                cluster.addresses, recorder, workload.keys.all, FINAL_READ_TIMEOUT, ssl=cluster.ssl
            )
    except ClusterError as e:
        result.error = str(e).splitlines()[0][:500]
    if workload is not None:
        result.outcomes = workload.outcomes
    if nemesis is not None:
        result.events = nemesis.events
    operations = recorder.operations()
    per_key = verdicts(operations, opts.budget) if result.error is None else []
    lost = lost_writes(operations, final) if result.error is None else []
    result.keys = len(per_key)
    result.lost = len(lost)
    result.final_read_failures = sum(1 for v in per_key if v.key not in final)
    if result.error is None:
        if any(not v.result.ok and not v.result.inconclusive for v in per_key) or lost:
            result.verdict = "not linearizable"
        elif any(v.result.inconclusive for v in per_key):
            result.verdict = "inconclusive"
        else:
            result.verdict = "linearizable"
    if nemesis is not None:
        result.violations = list(nemesis.violations)
        result.old_identity_refused = nemesis.old_identity_refused
    result.passed = (result.verdict == "linearizable" and not lost and result.final_read_failures == 0
                     and not result.violations)

    out("")
    out("operations")
    for line in report.operations_table(result.outcomes):
        out("  " + line)
    if workload is not None and workload.errors:
        out("  errors: " + "; ".join(f"{text} x{n}" for text, n in workload.errors.most_common(6)))
    out("")
    out("faults (seconds since the start; each member restarted with kill -9 at the end)")
    for line in report.faults_lines(result.events):
        out(line)
    out("")
    if sampler is not None:
        result.resources = sampler.as_dict()
        out(f"resources (a sample every {opts.sample_every:g} s; members restarted by the nemesis start again "
            "from scratch)")
        for line in sampler.report():
            out("  " + line)
        out("")
    out("verdict per key")
    for line in report.verdict_lines(per_key, final, lost):
        out(line)
    if result.error:
        out(f"  run failed: {result.error}")
    if result.old_identity_refused or result.violations:
        out(f"  wiped members refused their old identity: {result.old_identity_refused}")
    for violation in result.violations:
        out(f"  VIOLATION: {violation}")
    out("")
    history = opts.history or (None if result.passed else f"chaos-history-{opts.seed}.json")
    if history:
        with open(history, "w") as f:
            json.dump(report.history_document(operations, result.events, opts.seed, list(opts.argv)), f)
        result.history_file = history
        out(f"history: {history} ({len(operations)} operations)")
    if opts.data_dir is None:
        # A fault that could not be carried out (a member that never became a voter again,
        # a cluster that did not become whole) is worth a look even when the history holds:
        # its node logs say why.
        if result.passed and not any(e.error for e in result.events):
            shutil.rmtree(root, ignore_errors=True)
        else:
            out(f"data dirs and node logs kept in {root}")
    out(f"seed {opts.seed}; replay: {opts.replay()}")
    out(f"VERDICT: {result.verdict.upper()}, {result.lost} acknowledged writes lost"
        + ("" if result.passed else " -- FAILED"))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(result.summary(opts), f, indent=1)
    return result
