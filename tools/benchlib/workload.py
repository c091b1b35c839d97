"""What the clients send: keys from a fixed keyspace, random fixed-size values, an op mix.

Keys are the key index zero-padded to --key-size digits (the format etcdbench uses, so
both systems see the same keys).  Values are drawn from a pool of random strings made
once per client process: random content, fixed size, and no per-request cost.
"""
from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass

VALUE_POOL = 256
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    op: str  # put | get | get-serializable | mix
    read_ratio: float
    keys: int
    key_size: int
    value_size: int


def key_name(index: int, key_size: int) -> str:
    return f"{index:0{key_size}d}"


class Workload:
    """Draws the next operation: ("put", key, value) or ("get", key, serializable)."""

    def __init__(self, spec: WorkloadSpec, seed: int) -> None:
        self.spec = spec
        self._rng = random.Random(seed)
        self._keys = [key_name(i, spec.key_size) for i in range(spec.keys)]
        self.values = ["".join(self._rng.choices(_ALPHABET, k=spec.value_size)) for _ in range(VALUE_POOL)]
        self._serializable = spec.op == "get-serializable"
        self._read_ratio = {"put": 0.0, "mix": spec.read_ratio}.get(spec.op, 1.0)

    def next(self) -> tuple[str, str, str | bool]:
        rng = self._rng
        key = self._keys[rng.randrange(len(self._keys))]
        if self._read_ratio and (self._read_ratio >= 1.0 or rng.random() < self._read_ratio):
            return "get", key, self._serializable
        return "put", key, self.values[rng.randrange(VALUE_POOL)]

    def all_keys(self) -> list[str]:
        return list(self._keys)


def b64(text: str) -> str:
    """etcd's JSON gateway carries keys and values as base64 of their bytes."""
    return base64.b64encode(text.encode()).decode()
