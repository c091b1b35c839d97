"""One simulated run: a cluster, clients, a schedule of faults, then a liveness check.

`run_seed` is what the tests and `python -m abcd.sim` call.  Everything is derived
from the seed, so a failing run is replayed exactly by the command it prints.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..raft.core import Options, RaftCore
from .broken import BROKEN
from .cluster import TICK_MS, Cluster, SnapshotPolicy, encode_state
from .invariants import InvariantViolation
from .network import NetworkFaults
from .workload import Workload

ALL_FAULTS = ("drop", "duplicate", "reorder", "partition", "crash")


@dataclass
class RunResult:
    seed: int
    nodes: int
    events: int
    virtual_ms: float
    leaders_elected: int
    first_leader_term: int | None
    acked_writes: int
    completed_reads: int
    history: list = field(default_factory=list)
    snapshot_every: int | None = None  # None: this run took no snapshots
    # snapshots_taken, _sent (InstallSnapshot), _delivered, _installed (Restore effects)
    snapshot_stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        text = (
            f"seed {self.seed}: {self.events} events, {self.virtual_ms / 1000:.1f} s virtual, "
            f"{self.leaders_elected} leader(s) elected, {self.acked_writes} writes acknowledged, "
            f"{self.completed_reads} reads served"
        )
        if self.snapshot_every is not None:
            st = self.snapshot_stats
            text += (
                f", snapshots every {self.snapshot_every} entries: {st['snapshots_taken']} taken, "
                f"{st['snapshots_sent']} sent, {st['snapshots_delivered']} delivered, "
                f"{st['snapshots_installed']} installed"
            )
        return text


class SimulationFailure(AssertionError):
    def __init__(
        self, seed: int, nodes: int, steps: int, faults, reason: str, snapshots: bool | int = True, broken=None
    ) -> None:
        self.replay = replay_command(seed, nodes, steps, faults, snapshots, broken)
        super().__init__(f"seed {seed}: {reason}\n  replay: {self.replay}")


def replay_command(seed: int, nodes: int, steps: int, faults, snapshots: bool | int = True, broken=None) -> str:
    """The command that runs this seed again (`broken`: the name of a core of broken.py)."""
    f = ",".join(faults) if faults else "none"
    command = f"python -m abcd.sim --nodes {nodes} --seed {seed} --steps {steps} --faults {f} --trace"
    if snapshots is not True:
        command += f" --snapshot-every {int(snapshots)}"  # False is 0: never
    if broken is not None:
        command += f" --broken {broken}"
    return command


def network_faults(faults) -> NetworkFaults:
    return NetworkFaults(
        drop_rate=0.05 if "drop" in faults else 0.0,
        duplicate_rate=0.03 if "duplicate" in faults else 0.0,
        slow_rate=0.05 if "reorder" in faults else 0.0,
    )


def snapshot_policy(rng: random.Random, snapshots: bool | int = True) -> SnapshotPolicy | None:
    """True: the seed decides; most runs snapshot every 3 to 40 applied entries, some
    never do.  A number: every that many entries.  False or 0: never."""
    if snapshots is False or snapshots == 0:
        return None
    never = rng.random() < 0.15
    every = rng.randint(3, 40)
    max_lag = rng.choice((0, rng.randint(1, 10)))
    if snapshots is True:
        return None if never else SnapshotPolicy(every, max_lag, rng)
    return SnapshotPolicy(int(snapshots), max_lag, rng)


class FaultSchedule:
    """Every few hundred virtual ms: partition, heal, crash or restart something."""

    def __init__(self, cluster: Cluster, rng: random.Random, faults, interval=(100.0, 1000.0)) -> None:
        self.cluster, self.rng, self.faults = cluster, rng, faults
        self.interval = interval
        self.active = True

    def start(self) -> None:
        if "partition" in self.faults or "crash" in self.faults:
            self.cluster.schedule(self.rng.uniform(*self.interval), "call", self._next)

    def _next(self) -> None:
        if not self.active:
            return
        c, rng = self.cluster, self.rng
        choices = []
        if "partition" in self.faults:
            choices += ["partition", "one_way", "heal"]
        if "crash" in self.faults:
            choices += ["crash", "crash_leader", "restart", "restart"]
        action = rng.choice(choices)
        leader = c.leader()
        if action in ("partition", "one_way"):
            size = rng.randint(1, len(c.ids) // 2)
            side = set(rng.sample(c.ids, size))
            if leader is not None and rng.random() < 0.5:
                side = {leader.id} | set(rng.sample(c.ids, size - 1))  # often, cut the leader off
            c.partition(side, one_way=action == "one_way")
        elif action == "heal":
            c.heal()
        elif action == "crash":
            c.crash(rng.choice(c.ids))
        elif action == "crash_leader":
            if leader is not None:
                c.crash(leader.id)
        elif action == "restart":
            down = [i for i in c.ids if not c.nodes[i].up]
            if down:
                c.restart(rng.choice(down))
        c.schedule(rng.uniform(*self.interval), "call", self._next)

    def heal_all(self) -> None:
        self.active = False
        self.cluster.heal()
        for i in self.cluster.ids:
            self.cluster.restart(i)


def run_seed(
    seed: int,
    *,
    nodes: int = 3,
    steps: int = 2000,
    faults=ALL_FAULTS,
    core_factory=RaftCore,
    options: Options = Options(),
    tracer=None,
    recorder=None,
    check_liveness: bool = True,
    fault_interval: tuple[float, float] = (100.0, 1000.0),
    snapshots: bool | int = True,
    observer=None,
) -> RunResult:
    """One run of `steps` events with faults, then (unless check_liveness is False) the
    liveness check.  `recorder` is an abcd.check HistoryRecorder for the clients'
    operations; `observer` watches the cluster (record.RunRecorder)."""
    rng = random.Random(seed)
    cluster_seed, workload_seed, schedule_seed = rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(64)
    # Drawn last, so that the other streams of a seed do not depend on it.
    policy = snapshot_policy(random.Random(rng.getrandbits(64)), snapshots)
    cluster = Cluster(
        nodes,
        cluster_seed,
        faults=network_faults(faults),
        core_factory=core_factory,
        options=options,
        tracer=tracer,
        snapshots=policy,
        observer=observer,
    )
    workload = Workload(cluster, random.Random(workload_seed), recorder=recorder)
    schedule = FaultSchedule(cluster, random.Random(schedule_seed), faults, fault_interval)
    leaders: list[tuple[int, int]] = []
    original_check = cluster.checker.check_leader

    def record_leader(node_id: int, term: int) -> None:
        original_check(node_id, term)
        leaders.append((term, node_id))

    cluster.checker.check_leader = record_leader
    try:
        workload.start()
        schedule.start()
        cluster.run(max_events=steps)
        if check_liveness:
            _check_liveness(cluster, workload, schedule, options)
    except (InvariantViolation, LivenessFailure) as failure:
        broken = core_factory.__name__ if BROKEN.get(core_factory.__name__) is core_factory else None
        raise SimulationFailure(seed, nodes, steps, faults, str(failure), snapshots, broken) from failure
    workload.finish(cluster.checker.applied)
    return RunResult(
        seed,
        nodes,
        cluster.events_processed,
        cluster.now,
        len(leaders),
        leaders[0][0] if leaders else None,
        workload.acked_writes,
        workload.completed_reads,
        snapshot_every=policy.every if policy is not None else None,
        snapshot_stats=dict(cluster.stats),
    )


class LivenessFailure(AssertionError):
    pass


def _check_liveness(cluster: Cluster, workload: Workload, schedule: FaultSchedule, options: Options) -> None:
    """Once faults heal, a leader emerges, a new write commits and nothing stays in limbo."""
    schedule.heal_all()
    workload.running = False
    # Pre-vote, randomized timeouts and a few lost rounds: bound it generously.
    election_ms = options.election_ticks * TICK_MS
    deadline = cluster.now + 40 * election_ms
    probe_tag = -1
    committed = False

    def probe_committed() -> bool:
        leader = cluster.leader()
        return leader is not None and leader.last_applied >= leader.core.log.last_index

    while cluster.now < deadline:
        cluster.run(until=cluster.now + election_ms)
        leader = cluster.leader()
        if leader is not None and not committed:
            cluster.propose(leader.id, probe_tag, (b"liveness=probe",))
            cluster.run(until=cluster.now + 10 * election_ms)
            committed = probe_committed() and all(
                n.last_applied == leader.last_applied for n in cluster.nodes.values()
            )
            if committed:
                break
    if not committed:
        status = {i: n.core.status() for i, n in cluster.nodes.items()}
        raise LivenessFailure(f"no leader committed a write within {deadline:.0f} ms after healing: {status}")
    # Every node applied the same index, by entries or restored from a snapshot, and
    # replayed after restarts: their state machines must be identical.
    states = {encode_state(n.state) for n in cluster.nodes.values()}
    if len(states) != 1:
        raise InvariantViolation(
            f"State Machine Safety: nodes at index {leader.last_applied} hold different states",
            invariant="State Machine Safety",
            members=cluster.ids,
        )
    # Every accepted write is now resolved: committed with its term, or replaced.
    applied = cluster.checker.applied
    for w in workload.all_accepted:
        entry = applied.get(w.index)
        if entry is None:
            leader = cluster.leader()
            if leader.core.log.term_at(w.index) == w.term:
                raise LivenessFailure(f"write at index {w.index} term {w.term} is in the leader's log but never commits")
