"""Client sessions: exactly-once application of retried writes (thesis §6.3).

A client tags a write with `request_id = "client:seq"` and reuses the same id when it
retries.  Retries can reach the log twice (the first attempt was committed but its
answer lost, or both attempts are in the log), so the dedup happens here, at apply time,
identically on every node:

- Per client the table remembers the outcomes (response body or KVError) of its last
  `window` applied requests, keyed by seq, and a `floor`: every applied seq that is no
  longer remembered is <= floor.
- A seq that is remembered returns the remembered outcome: the same body, or the same
  error raised again; nothing is applied.
- A seq above the floor that is not remembered was never applied: it is applied now.
  Clients may therefore pipeline up to `window` writes and have any subset of them
  retried, in any order.
- A seq at or below the floor that is not remembered cannot be told apart from one
  applied long ago: it is refused with `duplicate_stale` and nothing is applied.

Memory is bounded deterministically, by apply order only: at most `window` outcomes per
client, and at most `max_clients` clients; adding one more evicts the client whose last
applied request is the oldest.  An evicted client starts afresh, so a retry that arrives
after its client was evicted would be applied again: clients must not stay silent for
longer than it takes `max_clients` other clients to write.

A client id must be unique to one client process (a random id per start, say): the
table cannot tell a restarted client reusing "c7:1" from a retry of the old "c7:1".
"""
from __future__ import annotations

from .errors import KVError, duplicate_stale

DEFAULT_MAX_CLIENTS = 10_000
DEFAULT_WINDOW = 128

# An outcome is the response body (a dict) or the KVError the command raised.
Outcome = dict | KVError


class _Session:
    __slots__ = ("floor", "outcomes")

    def __init__(self, floor: int = 0) -> None:
        self.floor = floor
        # seq -> outcome, in apply order (the first item is the next to evict).
        self.outcomes: dict[int, Outcome] = {}


class Sessions:
    __slots__ = ("max_clients", "window", "_by_client")

    def __init__(self, max_clients: int = DEFAULT_MAX_CLIENTS, window: int = DEFAULT_WINDOW) -> None:
        if max_clients < 1 or window < 1:
            raise ValueError(f"max_clients and window must be at least 1, got {max_clients} and {window}")
        self.max_clients = max_clients
        self.window = window
        # client -> session, least recently applied first.
        self._by_client: dict[str, _Session] = {}

    def __len__(self) -> int:
        return len(self._by_client)

    def lookup(self, client: str, seq: int) -> Outcome | None:
        """The outcome of an already applied (client, seq), or None if it must be applied.

        Raises KVError duplicate_stale when the table can no longer tell.
        """
        session = self._by_client.get(client)
        if session is None:
            return None
        outcome = session.outcomes.get(seq)
        if outcome is None and seq <= session.floor:
            raise duplicate_stale(f"{client}:{seq}", self.window)
        return outcome

    def record(self, client: str, seq: int, outcome: Outcome) -> None:
        by_client = self._by_client
        session = by_client.pop(client, None)
        if session is None:
            session = _Session()
        by_client[client] = session  # now the most recently applied
        outcomes = session.outcomes
        outcomes[seq] = outcome
        if len(outcomes) > self.window:
            oldest = next(iter(outcomes))
            del outcomes[oldest]
            if oldest > session.floor:
                session.floor = oldest
        if len(by_client) > self.max_clients:
            del by_client[next(iter(by_client))]

    # ----------------------------------------------------------------------- snapshots

    def capture(self) -> list:
        """[[client, floor, [[seq, body, error], ...]], ...] in eviction order; exactly one
        of body and error is not null, error being [status, code, message]."""
        out = []
        for client, session in self._by_client.items():
            entries = []
            for seq, outcome in session.outcomes.items():
                if isinstance(outcome, KVError):
                    entries.append([seq, None, [outcome.status, outcome.code, outcome.message]])
                else:
                    entries.append([seq, outcome, None])
            out.append([client, session.floor, entries])
        return out

    @classmethod
    def from_capture(cls, state: list, max_clients: int, window: int) -> "Sessions":
        sessions = cls(max_clients, window)
        # A restore with smaller bounds than the snapshot's keeps the most recent entries,
        # exactly as if they had been evicted in apply order.
        for client, floor, entries in state:
            if type(client) is not str or type(floor) is not int or type(entries) is not list:
                raise ValueError(f"bad session for client {client!r}")
            session = _Session(floor)
            sessions._by_client.pop(client, None)
            sessions._by_client[client] = session
            for seq, body, error in entries:
                if type(seq) is not int:
                    raise ValueError(f"bad seq {seq!r} for client {client!r}")
                if error is not None:
                    status, code, message = error
                    outcome: Outcome = KVError(status, code, message)
                elif type(body) is dict:
                    outcome = body
                else:
                    raise ValueError(f"bad outcome for request {client}:{seq}")
                session.outcomes[seq] = outcome
                if len(session.outcomes) > window:
                    oldest = next(iter(session.outcomes))
                    del session.outcomes[oldest]
                    session.floor = max(session.floor, oldest)
            if len(sessions._by_client) > max_clients:
                del sessions._by_client[next(iter(sessions._by_client))]
        return sessions
