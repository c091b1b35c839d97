"""Random command sequences played through the transcript harness, with every safety
check on: election safety, leader completeness, state machine safety, durability
before speech (harness.py), plus agreement of committed log prefixes and
linearizable ReadIndex answers (here).

Each seed is a deterministic run; a failure prints its seed and the commands that
led to it, ready to paste into testdata/ as a transcript.
"""
from __future__ import annotations

import random

import pytest

from abcd.raft.effects import ReadReady

from .harness import Scenario, ScenarioError

SEEDS = range(60)
STEPS = 300


class RandomRun:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sc = Scenario()
        self.commands: list[str] = []
        self.read_floor: dict[int, int] = {}  # read tag -> highest index applied anywhere when issued
        self.next_new_node = 0

    def do(self, command: str) -> None:
        self.commands.append(command)
        if command.startswith("read "):
            first_tag = self.sc.next_tag
            floor = max(self.sc.applied, default=0)
        try:
            self.sc.run(command)
        except ScenarioError:
            pass  # a random command that does not apply now (persist with nothing pending, ...)
        if command.startswith("read "):
            for tag in range(first_tag, self.sc.next_tag):
                self.read_floor[tag] = floor

    def start(self) -> None:
        rng = self.rng
        n = rng.choice([3, 5])
        options = [
            f"pre_vote={rng.choice(['true', 'false'])}",
            f"check_quorum={rng.choice(['true', 'false'])}",
            f"election_ticks={rng.choice([3, 4, 10])}",
            f"max_entries={rng.choice([1, 2, 4096])}",
            f"max_inflight={rng.choice([1, 2, 64])}",
        ]
        self.do(f"cluster {n} " + " ".join(options))
        self.next_new_node = n + 1

    def step(self) -> None:
        rng, ids = self.rng, sorted(self.sc.nodes)
        i, j = rng.choice(ids), rng.choice(ids)
        r = rng.random()
        if r < 0.20:
            self.do(f"tick {i} {rng.randint(1, 3)}")
        elif r < 0.25:
            self.do(f"tick all {rng.randint(1, 4)}")
        elif r < 0.32:
            self.do(f"timeout {i}")
        elif r < 0.52:
            targets = " ".join(map(str, rng.sample(ids, rng.randint(0, 2))))
            self.do(f"deliver {targets}" + (" persist=false" if rng.random() < 0.2 else ""))
        elif r < 0.57:
            self.do(f"persist {i}")
        elif r < 0.67:
            self.do(f"propose {i} " + " ".join(f"v{rng.randint(0, 99)}" for _ in range(rng.randint(1, 3))))
        elif r < 0.71:
            self.do(f"read {i} {rng.randint(1, 2)}")
        elif r < 0.73:
            self.do(f"transfer {i} {j}")
        elif r < 0.77:
            self.do(f"cut {i} {j}" if i != j else "heal")
        elif r < 0.80:
            self.do("heal")
        elif r < 0.83:
            self.do(f"crash {i}")
        elif r < 0.88:
            self.do(f"restart {i}")
        elif r < 0.90:
            self.do(f"drop {i}")
        elif r < 0.94:
            self.change_membership()
        elif r < 0.97:
            self.compact(i)
        else:
            self.do("deliver")

    def compact(self, node_id: int) -> None:
        """Snapshot and compact, at the snapshot's index or a few entries before it."""
        node = self.sc.nodes[node_id]
        if node.core is None:
            return
        applied = node.core.last_applied
        lag = self.rng.choice([0, 0, 1, 2, 3])
        self.do(f"compact {node_id} {max(0, applied - lag)}" if lag else f"compact {node_id}")

    def change_membership(self) -> None:
        """A random single-server change proposed to a current leader (which may remove itself)."""
        rng = self.rng
        leaders = [n for n in self.sc.nodes.values() if n.core is not None and n.core.is_leader()]
        if not leaders:
            return
        leader = rng.choice(leaders)
        voters, learners = set(leader.core.config.voters), set(leader.core.config.learners)
        others = sorted(voters)
        r = rng.random()
        if r < 0.3 and self.next_new_node <= 7:
            self.do(f"add {self.next_new_node}")
            learners.add(self.next_new_node)
            self.next_new_node += 1
        elif r < 0.5 and learners:
            promoted = rng.choice(sorted(learners))
            learners.discard(promoted)
            voters.add(promoted)
        elif r < 0.8 and others:
            voters.discard(rng.choice(others))
        elif others:
            demoted = rng.choice(others)
            voters.discard(demoted)
            learners.add(demoted)
        learner_option = f" learners={','.join(map(str, sorted(learners)))}" if learners else ""
        self.do(f"config {leader.id} voters={','.join(map(str, sorted(voters)))}{learner_option}")

    def check(self) -> None:
        """Committed prefixes agree (where the logs still hold them; a snapshot ends with
        the entry applied at its index); ReadIndex never answers below a write already
        applied."""
        committed = {}
        for node in self.sc.nodes.values():
            core = node.core
            if core is None:
                continue
            for i in range(core.log.first_index, core.commit_index + 1):
                entry = core.log.entry(i)
                assert committed.setdefault(i, entry) == entry, f"committed entries at {i} disagree"
            if core.log.snapshot_index:
                applied = self.sc.applied.get(core.log.snapshot_index)
                assert applied is not None and applied.term == core.log.snapshot_term, "a snapshot is not committed state"
        for tag, floor in self.read_floor.items():
            result = self.sc.results.get(tag)
            if type(result) is ReadReady:
                assert result.read_index >= floor, f"read {tag} answered at {result.read_index} < {floor}"


@pytest.mark.parametrize("seed", SEEDS)
def test_random_scenario_keeps_raft_safe(seed):
    run = RandomRun(seed)
    run.start()
    try:
        for _ in range(STEPS):
            run.step()
            run.check()
    except AssertionError as e:
        replay = "\n".join(f"> {c}" for c in run.commands)
        pytest.fail(f"seed {seed}: {e}\ncommands so far (a transcript):\n{replay}", pytrace=False)
    # The run must have done something worth checking.
    assert run.sc.leaders, f"seed {seed}: nobody was ever elected"
