"""StepRecord: everything one step asks of the shell, in named parts.

`RaftCore.step` and `step_many` return one StepRecord.  Each part is for one
consumer of the shell, which reads that part and nothing else:

    soft       SoftState: leader, role, term, commit index
    config     ConfigState: the configuration, its entries, the pending change
    messages   peer messages to send now
    persist    Persist: hard state, entries (and an installed snapshot) to make durable
    replies    Reply: answers to the shell's requests (proposals, reads, calls)
    restore    Restore: replace the state machine with a leader's snapshot
    committed  committed entries to apply, in log order
    traces     Trace: the story of the step

The order in which the shell honours the parts
----------------------------------------------
1. `soft` and `config`: the shell's view of who leads and who is a member is
   updated first, so that a member added in this step is reachable by the messages
   of this step.
2. `messages`: sent before the write of `persist` starts.  A leader's AppendEntries
   need not wait for its own disk (thesis §10.2.1); a message that promises durable
   state (a vote grant, an acknowledgement) is never in `messages` before the
   Persisted that covers it came back, because the core holds it (thesis §3.8), so
   this order is safe whatever the shell does.
3. `persist`: written, and acknowledged with Persisted(seq) once durable.  A
   snapshot in it is saved before the log records after it.
4. `replies`: requests learn their fate (accepted at an index, refused, read index).
5. `restore`, then `committed`: the state machine jumps to a leader's snapshot,
   then applies what follows it.  Replies come first so that an entry applied in
   this step finds the request it answers.
6. `traces`: logged last; they never change what the shell does.

Cheap by design: one step per loop turn carries every write of that turn.  A part
with nothing in it is the shared empty tuple; `soft` and `config` are the same
objects as in the previous record while nothing in them changed (compare with
`is`), so an unchanged part costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from .config import Configuration
from .effects import Apply, Persist, Reply, Restore, Send, Trace
from .messages import Entry, Message
from .roles import Role

EMPTY: tuple = ()


@dataclass(frozen=True, slots=True)
class SoftState:
    """What the shell needs to know of the core's volatile state (not persisted)."""

    leader_id: int | None
    role: Role
    term: int
    commit_index: int


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One configuration entry of the log: where it is and the shell's context in it."""

    index: int
    term: int
    config: Configuration
    context: str


@dataclass(frozen=True, slots=True)
class ConfigState:
    """The configuration side of the core (thesis ch. 4).

    `config` is the latest configuration in the log, committed or not (§4.1);
    `base` the one as of the start of the log (a snapshot's); `entries` every
    configuration entry of the log, oldest first; `committed_index` the index of the
    newest of them at or below the commit index (0: the base is in force there);
    `pending_index` a leader's latest configuration entry (a new change waits until
    it commits).
    """

    config: Configuration
    base: Configuration
    entries: tuple[ConfigEntry, ...]
    committed_index: int
    pending_index: int

    def at(self, index: int) -> ConfigEntry | None:
        """The newest configuration entry at or before `index` (None: the base's)."""
        for entry in reversed(self.entries):
            if entry.index <= index:
                return entry
        return None

    def config_at(self, index: int) -> Configuration:
        entry = self.at(index)
        return entry.config if entry is not None else self.base


@dataclass(slots=True)
class StepRecord:
    """One step's parts, in the order the shell honours them (see the module doc)."""

    soft: SoftState
    config: ConfigState
    messages: Sequence[Message]
    persist: Persist | None
    replies: Sequence[Reply]
    restore: Restore | None
    committed: tuple[Entry, ...]
    traces: Sequence[Trace]

    def effects(self) -> Iterator[Send | Persist | Reply | Restore | Apply | Trace]:
        """The parts as one sequence of effects: the traces (the story of the step),
        then what the shell does, in its order.  For readers that print or check a
        step as a whole (scenario transcripts, tests); it allocates, the node does not
        use it."""
        yield from self.traces
        for message in self.messages:
            yield Send(message)
        if self.persist is not None:
            yield self.persist
        yield from self.replies
        if self.restore is not None:
            yield self.restore
        if self.committed:
            yield Apply(self.committed)
