"""Cluster configuration: who votes, who only listens (thesis ch. 4).

A server uses the latest configuration in its log, committed or not (thesis §4.1);
so the core recomputes it whenever its log changes.  Changes are single-server:
a new configuration may add or remove at most one voter, which keeps every two
majorities of consecutive configurations overlapping.
"""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Configuration:
    voters: frozenset[int]
    learners: frozenset[int] = frozenset()

    @property
    def members(self) -> frozenset[int]:
        return self.voters | self.learners

    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def has_quorum(self, ids) -> bool:
        return len(self.voters.intersection(ids)) >= self.quorum()

    def committed_index(self, match: dict[int, int]) -> int:
        """The highest index stored on a majority of voters (0 if none)."""
        if not self.voters:
            return 0
        indexes = sorted((match.get(v, 0) for v in self.voters), reverse=True)
        return indexes[self.quorum() - 1]


def encode_config(config: Configuration, context: str = "") -> bytes:
    """`context` is the shell's own (e.g. member names and addresses); the core ignores it."""
    return json.dumps(
        {"voters": sorted(config.voters), "learners": sorted(config.learners), "context": context},
        separators=(",", ":"),
    ).encode()


def config_context(data: bytes) -> str:
    return json.loads(data).get("context", "")


def decode_config(data: bytes) -> Configuration:
    obj = json.loads(data)
    return Configuration(frozenset(obj["voters"]), frozenset(obj.get("learners", ())))


def single_server_change_error(old: Configuration, new: Configuration) -> str | None:
    """Why `new` may not follow `old` directly, or None if it may (thesis §4.1)."""
    if not new.voters:
        return "a configuration needs at least one voter"
    if new.voters & new.learners:
        return "a member cannot be both voter and learner"
    changed = len(old.voters ^ new.voters)
    if changed > 1:
        return f"only one voter may be added or removed at a time ({changed} changed)"
    return None
