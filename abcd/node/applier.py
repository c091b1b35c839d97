"""The applier: committed entries, in log order, into the key-value state machine.

Each step record's `committed` part hands out entries exactly once per process life
(the core's promise), so applying is a plain loop: decode the command, `KVStore.apply` it at its
index (without validating it again: the leader validated and normalized it before
proposing it), and give the response to the request waiting for that entry: the
requests' `claim(entry)` hands it over only if the entry's term is the one its
proposal was accepted in (requests.py), and the applier answers it with the response.  A leader
applying its own proposal (same index, same term: the same entry) skips the decoding
and applies the command as it validated it.

Entries without a command for the store (the leader's no-op, configuration changes)
only advance the store's applied index; configuration entries are also reported to
`on_config` where one is given (the node's member table follows the core's
configuration from each step record's `config` part instead: Node._learn).  After a batch, linearizable reads
waiting for this applied index are served.

A Restore (a follower installing the leader's snapshot, Figure 13 step 8) replaces the
store's whole state with the snapshot's, in the same object: `load_snapshot` gives a
new store holding it (the node's snapshotter loaded it when the message arrived), and
`KVStore.replace_state` moves it in and tells the watches (api/watch.py: each catches
up from the snapshot's history, or is closed with the revision to resume from).
Waiting requests follow (requests.PendingRequests.on_restored): reads whose read index
the snapshot covers are served from it; writes accepted at an index it covers get a
504, since this node cannot tell whether they were committed.  The next entries
continue at the snapshot's index + 1.
"""
from __future__ import annotations

from typing import Callable, Sequence

import loguru
import orjson

from ..kv import KVError, KVStore
from ..raft.effects import Restore
from ..raft.record import StepRecord
from ..raft.messages import ENTRY_CONFIG, Entry
from . import responses
from .requests import PendingRequests


def _no_snapshots(restore: Restore) -> KVStore:
    raise RuntimeError("this applier cannot restore snapshots (no load_snapshot given)")


class Applier:
    def __init__(
        self,
        store: KVStore,
        requests: PendingRequests,
        *,
        on_config: Callable[[Entry], None] = lambda entry: None,
        load_snapshot: Callable[[Restore], KVStore] = _no_snapshots,
        on_restored: Callable[[Restore], None] = lambda restore: None,
        logger=loguru.logger,
    ) -> None:
        self._store = store
        self._requests = requests
        self._on_config = on_config
        self._load_snapshot = load_snapshot
        self._on_restored = on_restored
        self._logger = logger
        self.entries_applied = 0
        self.commands_failed = 0
        self.snapshots_restored = 0

    def on_record(self, record: StepRecord) -> None:
        """A step's `restore` and `committed` parts, in that order."""
        restore, committed = record.restore, record.committed
        if restore is not None:
            self.restore(restore)
        if committed:
            self.apply(committed)
        if restore is not None or committed:
            self._requests.release_reads()

    def restore(self, restore: Restore) -> None:
        """Replace the state machine with the snapshot of `restore` (see the module doc)."""
        index = restore.snapshot.last_included_index
        store = self._store
        if index <= store.applied_index:
            # The core installs only snapshots beyond its commit index: going back
            # would unapply committed entries.
            raise RuntimeError(f"refusing to restore a snapshot at index {index}: {store.applied_index} is applied")
        store.replace_state(self._load_snapshot(restore))
        self.snapshots_restored += 1
        self._requests.on_restored(index)
        self._on_restored(restore)

    def apply(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        store, requests = self._store, self._requests
        # Checked once per batch: only the requests' sink adds waiting writes, and it
        # runs before this one.  On a follower no write ever waits here.
        claim = requests.claim if requests.writes_waiting else None
        for entry in entries:
            write = claim(entry) if claim is not None else None
            if entry.kind == ENTRY_CONFIG:
                store.mark_applied(entry.index)
                self._on_config(entry)
                if write is not None:
                    write.waiter.resolve(responses.ok({}))
            elif not entry.data:
                store.mark_applied(entry.index)  # a leader's no-op (§8)
                if write is not None:
                    write.waiter.resolve(responses.error(500, "internal", f"entry {entry.index} carried no command"))
            elif write is not None:
                # Our own proposal (same index and term: the same entry, §5.3): apply the
                # command as validated instead of parsing its bytes again, and answer it.
                write.waiter.resolve(self._apply_command(entry, True, write.request))
            else:
                # Only a write waiting here needs its Response made.
                self._apply_command(entry, False)
        self.entries_applied += len(entries)

    def _apply_command(self, entry: Entry, answer: bool = True, command: dict | None = None) -> responses.Response | None:
        """Apply the command of `entry` (`command`: the same, already decoded); its
        Response if `answer` or if it failed."""
        try:
            if command is None:
                command = orjson.loads(entry.data)
            if type(command) is not dict:
                raise TypeError(f"a command is a JSON object, not {type(command).__name__}")
            body = self._store.apply(command, index=entry.index, normalized=True)
            return responses.ok(body) if answer else None
        except KVError as e:
            self.commands_failed += 1
            return responses.from_kv_error(e)
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            # Only validated commands enter the log (RequestRouter.handle_many), so this is a bug or a
            # foreign writer.  Every node sees the same bytes and skips the entry alike.
            if self._store.applied_index < entry.index:
                self._store.mark_applied(entry.index)
            self.commands_failed += 1
            self._logger.error("entry {} holds no valid command ({!r}); skipped", entry.index, e)
            return responses.error(500, "internal", f"log entry {entry.index} is not a valid command")
