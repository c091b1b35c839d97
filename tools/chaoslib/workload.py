"""The clients: puts, gets, deletes and compare-and-swaps on a few keys, each one
recorded in the history with its invoke and complete times and its outcome.

Each worker has its own `abcd.client.Client` (its own client id, so every write
carries an exactly-once request id and a retry is never applied twice), and prefers a
different member, so that every member serves requests.  Readers, if asked for, are
pinned to one member each and only read: they see what that member serves, which is
how a member answering reads from stale local state shows up in the history.

Keys are used for a while and then retired for fresh ones (`ops_per_key`), which keeps
each key's history, and so the checker's search, small.

How an answer maps to an outcome (docs/client.md, "Errors"):

- a value: **ok**;
- `BadRequest`, `NotFound`, `NotSupported`, any other 4xx, and `Unavailable` with
  `outcome_unknown=False` (no attempt reached a node, or every node refused with 503):
  **fail**, a definite refusal: the operation did not take effect;
- `Timeout`, `Unavailable` with `outcome_unknown=True` (a 504, a connection broken
  after sending, an answer that never came), a 5xx other than 503, anything unexpected:
  **unknown**, it may or may not have taken effect.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from .cluster import REPO_ROOT  # noqa: F401  (puts the package on sys.path)

from abcd.check import HistoryRecorder  # noqa: E402
from abcd.client import BadRequest, Client, ClientError, NotFound, NotSupported, Unavailable  # noqa: E402

# The share of each operation kind a worker issues.
MIX = (("get", 0.35), ("put", 0.30), ("cas", 0.25), ("delete", 0.10))
# Extra time beyond the client's own timeout before an operation is given up as unknown.
GRACE = 5.0


def outcome_of(error: BaseException) -> str:
    """'fail' (certainly not applied) or 'unknown' for an error a call raised."""
    if isinstance(error, Unavailable):  # Timeout included
        return "unknown" if error.outcome_unknown else "fail"
    if isinstance(error, (BadRequest, NotFound, NotSupported)):
        return "fail"
    if isinstance(error, ClientError) and 400 <= error.status < 500:
        return "fail"
    return "unknown"


class KeySpace:
    """`slots` keys in use at a time; each retires after `ops_per_key` operations."""

    def __init__(self, slots: int, ops_per_key: int) -> None:
        self.generation = [0] * slots
        self.used = [0] * slots
        self.ops_per_key = ops_per_key
        self.all: list[str] = []
        for slot in range(slots):
            self.all.append(self._name(slot))

    def _name(self, slot: int) -> str:
        return f"chaos/{slot}.{self.generation[slot]}"

    def take(self, rng: random.Random) -> str:
        slot = rng.randrange(len(self.used))
        self.used[slot] += 1
        if self.used[slot] > self.ops_per_key:
            self.generation[slot] += 1
            self.used[slot] = 1
            self.all.append(self._name(slot))
        return self._name(slot)


class Workload:
    def __init__(self, addresses: list[str], recorder: HistoryRecorder, *, seed: int, workers: int,
                 readers_per_node: int, keys: int, ops_per_key: int, timeout: float, ssl=None) -> None:
        self.addresses = addresses
        self.ssl = ssl  # an SSLContext for a TLS cluster
        self.recorder = recorder
        self.seed = seed
        self.workers = workers
        self.readers_per_node = readers_per_node
        self.keys = KeySpace(keys, ops_per_key)
        self.timeout = timeout
        self.outcomes: Counter = Counter()  # (kind, outcome) -> count
        self.errors: Counter = Counter()  # error text (shortened) -> count, for the report
        self.stop_at = 0.0

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    async def run(self, stop_at: float) -> None:
        self.stop_at = stop_at
        n = len(self.addresses)
        loops = [self._worker(w, self.addresses[w % n:] + self.addresses[:w % n]) for w in range(self.workers)]
        readers = [(address, r) for r in range(self.readers_per_node) for address in self.addresses]
        loops += [self._reader(f"r{i}", address) for i, (address, _) in enumerate(readers)]
        await asyncio.gather(*loops)

    async def _worker(self, w: int, endpoints: list[str]) -> None:
        rng = random.Random(f"{self.seed}/worker/{w}")
        seen: dict[str, str | None] = {}  # the last value this worker saw for each key
        kinds, weights = zip(*MIX)
        n = 0
        async with Client(endpoints, timeout=self.timeout, ssl=self.ssl) as client:
            while time.monotonic() < self.stop_at:
                n += 1
                key = self.keys.take(rng)
                kind = rng.choices(kinds, weights)[0]
                value = f"{w}.{n}" if kind in ("put", "cas") else None
                expected = None
                if kind == "cas":
                    expected = seen.get(key) if rng.random() < 0.8 else f"{w}.{rng.randrange(1, n + 1)}"
                output = await self._call(client, w, kind, key, value, expected)
                if output is not _NO_ANSWER:
                    if kind == "get":
                        seen[key] = output
                    elif kind == "put" or (kind == "cas" and output):
                        seen[key] = value
                    elif kind == "delete":
                        seen[key] = None

    async def _reader(self, name: str, address: str) -> None:
        rng = random.Random(f"{self.seed}/reader/{name}")
        async with Client([address], timeout=self.timeout, ssl=self.ssl) as client:
            while time.monotonic() < self.stop_at:
                result = await self._call(client, name, "get", self.keys.take(rng), None, None)
                if result is _NO_ANSWER:
                    # This member cannot serve now (paused, cut off, restarting): wait a
                    # little rather than spin on it.
                    await asyncio.sleep(0.05)

    async def _call(self, client: Client, who, kind: str, key: str, value, expected):
        handle = self.recorder.invoke(who, kind, key, value, expected)
        try:
            async with asyncio.timeout(self.timeout + GRACE):
                output = await self._request(client, kind, key, value, expected)
        except Exception as error:  # noqa: BLE001 - every error is an outcome to record
            outcome = outcome_of(error)
            (self.recorder.unknown if outcome == "unknown" else self.recorder.fail)(handle)
            self.outcomes[kind, outcome] += 1
            self.errors[f"{kind} {outcome}: {type(error).__name__} {getattr(error, 'code', '')}".strip()] += 1
            return _NO_ANSWER
        self.recorder.ok(handle, output)
        self.outcomes[kind, "ok"] += 1
        return output

    @staticmethod
    async def _request(client: Client, kind: str, key: str, value, expected):
        if kind == "get":
            body = await client.get(key)
            return None if body is None else body["kv"]["value"]
        if kind == "put":
            await client.put(key, value)
            return None
        if kind == "delete":
            await client.delete(key)
            return None
        if expected is None:  # swap only if the key is absent: version 0
            compare = [{"key": key, "target": "version", "op": "==", "value": 0}]
        else:
            compare = [{"key": key, "target": "value", "op": "==", "value": expected}]
        body = await client.txn(compare, [{"put": {"key": key, "value": value}}], [])
        return bool(body["succeeded"])


_NO_ANSWER = object()


async def final_reads(
    addresses: list[str], recorder: HistoryRecorder, keys: list[str], timeout: float, ssl=None
) -> dict:
    """Read every key once, linearizably, recorded in the history as client 'final'.
    Returns {key: value or None}; a key whose read failed is missing."""
    values = {}
    async with Client(addresses, timeout=timeout, ssl=ssl) as client:
        for key in keys:
            handle = recorder.invoke("final", "get", key)
            try:
                body = await client.get(key)
            except ClientError:
                recorder.fail(handle)
                continue
            value = None if body is None else body["kv"]["value"]
            recorder.ok(handle, value)
            values[key] = value
    return values
