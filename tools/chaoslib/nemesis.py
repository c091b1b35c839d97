"""The nemesis: applies the schedule's faults to the cluster, one at a time, while the
clients run, and remembers what it did and when.

Before each fault it waits until the cluster is whole again (every member running, a
voter, and agreeing on a leader), so each fault starts from a healthy cluster and a
3-member cluster never loses two members at once.  A fault that cannot be applied (a
membership call refused, no leader in time) is recorded with its error and the run
goes on: the clients' history is checked either way.

Besides breaking things, the nemesis checks one promise itself: a member that lost its
data dir is refused when it tries to come back under its old identity (the `replace`
fault starts the wiped node at its old address before removing the old member).  A
wiped node taken back as its old member is a violation, and fails the run.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from .cluster import ChaosCluster, ClusterError, NodeProcess, wait_for
from .schedule import FaultPlan

# How long the cluster may take to be whole again, or to elect a leader.
SETTLE_TIMEOUT = 60.0


@dataclass(slots=True)
class FaultEvent:
    """A fault as it happened: times in seconds since the run began."""

    kind: str
    detail: str
    start: float
    end: float | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "detail": self.detail, "start": round(self.start, 3),
                "end": None if self.end is None else round(self.end, 3), "error": self.error}


class Nemesis:
    def __init__(self, cluster: ChaosCluster, plans: list[FaultPlan], started: float) -> None:
        self.cluster = cluster
        self.plans = plans
        self.started = started  # time.monotonic() when the run began
        self.events: list[FaultEvent] = []
        self.running: FaultEvent | None = None
        self.violations: list[str] = []  # promises the nemesis saw broken (not the history's)
        self.old_identity_refused = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self, stop_at: float) -> None:
        """Apply faults until the next one would not end before `stop_at` (monotonic)."""
        for plan in self.plans:
            try:
                await asyncio.to_thread(self.cluster.wait_ready, SETTLE_TIMEOUT)
            except ClusterError as e:
                # No point breaking a cluster that is not whole: stop here, say why.
                self.events.append(FaultEvent("settle", "the cluster did not become whole again", self.now(),
                                              self.now(), str(e).splitlines()[0][:300]))
                return
            if time.monotonic() + plan.hold + 1.0 > stop_at:
                return
            event = FaultEvent(plan.kind, plan.describe(), self.now())
            self.events.append(event)
            self.running = event
            try:
                await getattr(self, "_" + plan.kind.replace("-", "_"))(plan, event)
            except (ClusterError, OSError) as e:
                event.error = str(e).splitlines()[0][:300]
            finally:
                await self.heal()
                event.end = self.now()
                self.running = None
            await asyncio.sleep(plan.gap)

    async def heal(self) -> None:
        """Undo what a fault may have left: paused processes, network faults, dead nodes."""
        await asyncio.to_thread(self.cluster.heal)
        for node in self.cluster.nodes:
            if not node.running:
                # A wiped member that did not make it back joins as a new one.
                has_identity = os.path.exists(os.path.join(node.data_dir, "meta.json"))
                self.cluster.start(node, join=None if has_identity else self._others(node))

    # ------------------------------------------------------------------ helpers

    async def _leader(self) -> NodeProcess:
        return await asyncio.to_thread(self.cluster.wait_leader, SETTLE_TIMEOUT)

    async def _target(self, plan: FaultPlan) -> NodeProcess:
        if plan.target == "leader":
            return await self._leader()
        running = [n for n in self.cluster.nodes if n.running]
        return running[plan.pick % len(running)]

    async def _follower(self, plan: FaultPlan) -> tuple[NodeProcess, NodeProcess]:
        leader = await self._leader()
        followers = [n for n in self.cluster.nodes if n.running and n is not leader]
        return leader, followers[plan.pick % len(followers)]

    def _mark(self, event: FaultEvent, what: str) -> None:
        event.detail += f": {what}"

    # ------------------------------------------------------------------ the faults

    async def _kill(self, plan: FaultPlan, event: FaultEvent) -> None:
        node = await self._target(plan)
        self._mark(event, self.cluster.name(node))
        self.cluster.kill(node)
        await asyncio.sleep(plan.hold)
        self.cluster.start(node)

    async def _pause(self, plan: FaultPlan, event: FaultEvent) -> None:
        node = await self._target(plan)
        self._mark(event, self.cluster.name(node))
        self.cluster.pause(node)
        await asyncio.sleep(plan.hold)
        self.cluster.resume(node)

    async def _partition_leader(self, plan: FaultPlan, event: FaultEvent) -> None:
        old = await self._leader()
        self._mark(event, f"{self.cluster.name(old)} cut off")
        await asyncio.to_thread(self.cluster.isolate, [old])
        # Held from the moment the others have a new leader, so that the old one is
        # certainly stale for the whole hold (what a stale read needs to show).
        new = await asyncio.to_thread(self.cluster.wait_leader, SETTLE_TIMEOUT, old)
        self._mark(event, f"{self.cluster.name(new)} elected")
        await asyncio.sleep(plan.hold)

    async def _partition_oneway(self, plan: FaultPlan, event: FaultEvent) -> None:
        node = await self._target(plan)
        others = {self.cluster.id_of(n) for n in self.cluster.nodes if n.running and n is not node}
        self._mark(event, f"{self.cluster.name(node)} cut off to the others (it still hears them)")
        await asyncio.to_thread(self.cluster.set_faults, node, cut_to=others)
        await asyncio.sleep(plan.hold)

    async def _partition_split(self, plan: FaultPlan, event: FaultEvent) -> None:
        running = [n for n in self.cluster.nodes if n.running]
        size = max(1, (len(running) - 1) // 2)
        first = plan.pick % len(running)
        minority = [running[(first + i) % len(running)] for i in range(size)]
        self._mark(event, "minority " + ", ".join(self.cluster.name(n) for n in minority))
        await asyncio.to_thread(self.cluster.isolate, minority)
        await asyncio.sleep(plan.hold)

    async def _network(self, plan: FaultPlan) -> None:
        for node in [n for n in self.cluster.nodes if n.running]:
            await asyncio.to_thread(self.cluster.set_faults, node, **plan.params)
        await asyncio.sleep(plan.hold)

    async def _latency(self, plan: FaultPlan, event: FaultEvent) -> None:
        await self._network(plan)

    async def _loss(self, plan: FaultPlan, event: FaultEvent) -> None:
        await self._network(plan)

    async def _transfer(self, plan: FaultPlan, event: FaultEvent) -> None:
        leader, to = await self._follower(plan)
        to_id = self.cluster.id_of(to)
        self._mark(event, f"{self.cluster.name(leader)} -> {self.cluster.name(to)}")
        await asyncio.to_thread(self.cluster.member_call, leader, "POST", "/v1/leader/transfer", {"to": to_id})

    async def _remove_and_wipe(self, plan: FaultPlan, event: FaultEvent) -> tuple[NodeProcess, NodeProcess]:
        leader, node = await self._follower(plan)
        old_id = self.cluster.id_of(node)
        self._mark(event, f"{self.cluster.name(node)} removed and wiped")
        await asyncio.to_thread(self.cluster.member_call, leader, "DELETE", f"/v1/members/{old_id}")
        self.cluster.kill(node)
        self.cluster.wipe(node)
        await asyncio.sleep(plan.hold)
        return leader, node

    def _others(self, node: NodeProcess) -> str:
        return ",".join(n.address for n in self.cluster.nodes if n is not node and n.running)

    async def _wait_voter(self, node: NodeProcess) -> int:
        def voter():
            leader = self.cluster.leader()
            if leader is None:
                return None
            member = next((m for m in self.cluster.members(leader) if m["address"] == node.address), None)
            return member["id"] if member and member["voter"] else None

        return await asyncio.to_thread(self.cluster_wait, voter, f"{node.address} to be a voter again")

    def cluster_wait(self, predicate, what: str):
        return wait_for(predicate, what, SETTLE_TIMEOUT, interval=0.1)

    async def _claim_old_identity(self, node: NodeProcess, old_id: int, event: FaultEvent) -> None:
        """Start the wiped node at the address of member `old_id`, still a member: it
        must be refused (exit 1, saying why), never taken back as that member."""
        self.cluster.start(node, join=self._others(node))

        def outcome():
            if not node.running:
                return "exited"
            status = node.status()
            return "serving" if status is not None and status.get("id") == old_id else None

        try:
            seen = await asyncio.to_thread(self.cluster_wait, outcome, f"the wiped {self.cluster.name(node)} to be refused")
        finally:
            self.cluster.kill(node)
            self.cluster.wipe(node)  # what the refused start left (its node.log)
        if seen == "serving":
            self.violations.append(f"{self.now():.1f} s: {node.address} rejoined under its old id {old_id} "
                                   "with a wiped data dir")
            raise ClusterError(f"the wiped node rejoined as its old member {old_id}")
        if "must not rejoin under its old identity" not in node.output(8000):
            raise ClusterError(f"the wiped node exited without the expected refusal: {node.output(300)!r}")
        self.old_identity_refused += 1
        self._mark(event, f"old id {old_id} refused")

    async def _replace(self, plan: FaultPlan, event: FaultEvent) -> None:
        leader, node = await self._follower(plan)
        old_id = self.cluster.id_of(node)
        self._mark(event, f"{self.cluster.name(node)} wiped")
        self.cluster.kill(node)
        self.cluster.wipe(node)
        await self._claim_old_identity(node, old_id, event)
        leader = await self._leader()
        await asyncio.to_thread(self.cluster.member_call, leader, "DELETE", f"/v1/members/{old_id}")
        self._mark(event, "removed")
        await asyncio.sleep(plan.hold)
        self.cluster.start(node, join=self._others(node))
        new_id = await self._wait_voter(node)
        self._mark(event, f"joined again as id {new_id}")

    async def _learner(self, plan: FaultPlan, event: FaultEvent) -> None:
        _, node = await self._remove_and_wipe(plan, event)
        leader = await self._leader()
        added = await asyncio.to_thread(
            self.cluster.member_call, leader, "POST", "/v1/members", {"address": node.address, "learner": True})
        new_id = added["member"]["id"]
        self._mark(event, f"added as learner id {new_id}")
        self.cluster.start(node, join=self._others(node))
        await asyncio.to_thread(self.cluster_wait, node.healthy, f"learner {new_id} to catch up")
        leader = await self._leader()
        try:
            await asyncio.to_thread(self.cluster.member_call, leader, "POST", f"/v1/members/{new_id}/promote")
            self._mark(event, "promoted")
        except ClusterError as e:
            if "learner_not_ready" not in str(e):
                raise
            # Healthy, yet still behind the leader: it promotes the learner on its own once
            # it has caught up (docs/operations.md).
            self._mark(event, "not caught up yet (409): promoted by the leader")
        await self._wait_voter(node)
