"""A data dir for a new one-member cluster, made from a state instead of from nothing:
from a backup file (`python -m abcd restore`), or from a member's own data when a
quorum is lost for good (`--force-new-cluster`).  docs/operations.md has the steps.

Either way the data dir gets what a node restarting from a snapshot finds: a snapshot
file holding the key-value store at its applied index, whose configuration names this
member alone (id, name, address) and keeps the old `next_id` so that ids are never
reused; a WAL holding the hard state and a LOG_RESET to that snapshot, so the log
starts right after it; and meta.json.  The node then starts as usual, elects itself,
and others join it with `--join`.

* **restore** makes a new cluster: a new cluster id, member id 1, term 1.  The
  backup's applied index is kept as the snapshot's index (the store's state names it).
* **force-new-cluster** keeps the cluster id, member id and term, and the store as
  this member holds it: its newest snapshot plus every entry of its WAL after it,
  committed or not as far as it knows (a member does not persist its commit index; an
  entry it holds but the old cluster never committed is kept, as etcd does).  The
  other old members are out of the configuration: a node started again with their old
  data is told it was removed.  The old wal/ and snap/ are moved aside, into
  `<data-dir>/before-force-new-cluster-<UTC time>/`, not deleted.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from typing import Any

import loguru
import orjson

from ..kv import KVError, KVStore
from ..raft.config import config_context
from ..raft.effects import Persist
from ..raft.messages import ENTRY_CONFIG, HardState
from ..storage import WAL, StorageError, save_snapshot, write_meta
from ..storage.backup import read_backup
from ..storage.files import fsync_dir
from .membership import MemberInfo, decode_context, encode_context
from .snapshot_format import encode_state
from .snapshot_recovery import recover


class NewClusterError(RuntimeError):
    """The data dir cannot be made; the message says why and what to do."""


def write_one_member(
    data_dir: str, *, document: bytes, index: int, term: int, hard_term: int,
    node_id: int, name: str, address: str, next_id: int,
) -> None:
    """Write the snapshot (the store's `document`, at `index` and `term`, configuration:
    this member alone) and a WAL that starts after it, into `data_dir` (no meta.json)."""
    context = encode_context({node_id: MemberInfo(name, address)}, next_id=max(next_id, node_id + 1))
    meta = {"voters": [node_id], "learners": [], "members": context}
    save_snapshot(data_dir, term, index, document, meta)
    wal, _ = WAL.open(data_dir)
    try:
        wal.write(Persist(0, HardState(hard_term, None), ()))
        wal.reset_log(index, term)
    finally:
        wal.close()  # close() fsyncs


def _port_of(address: str) -> int:
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        raise NewClusterError(f"--advertise must be HOST:PORT, got {address!r}") from None


# --------------------------------------------------------------------------- restore


def restore(path: str, *, data_dir: str, name: str, address: str) -> dict[str, Any]:
    """Make `data_dir` the data dir of a new one-member cluster holding the backup at
    `path`; returns a summary.  NewClusterError (bad file, data dir not empty)."""
    if os.path.exists(data_dir) and os.listdir(data_dir):
        raise NewClusterError(f"{data_dir} is not empty: restore into a new data dir")
    port = _port_of(address)
    try:
        info, document = read_backup(path)
    except (ValueError, OSError) as e:  # BackupError is a ValueError
        raise NewClusterError(str(e)) from None
    try:
        store = KVStore.restore(document)
    except ValueError as e:  # SnapshotError
        raise NewClusterError(f"{path}: {e}") from None
    if store.applied_index != info.index or store.current_revision != info.revision:
        raise NewClusterError(
            f"{path}: its header says index {info.index}, revision {info.revision}, but its store is at index "
            f"{store.applied_index}, revision {store.current_revision}"
        )
    if info.index < 1:
        raise NewClusterError(f"{path}: a backup at index 0 holds nothing to restore")
    node_id = 1
    write_one_member(
        data_dir, document=document, index=info.index, term=1, hard_term=1,
        node_id=node_id, name=name, address=address, next_id=node_id + 1,
    )
    meta = {"node_id": node_id, "cluster_id": uuid.uuid4().hex[:16], "name": name, "address": address, "port": port}
    write_meta(data_dir, meta)
    return {**meta, "revision": info.revision, "index": info.index, "keys": len(store)}


# --------------------------------------------------------------------------- force-new-cluster


def force_new_cluster(data_dir: str, meta: dict, *, name: str, address: str, port: int, logger=loguru.logger) -> dict:
    """Rewrite this member's data dir as a one-member cluster of the same id holding
    everything its log holds (module docstring); returns the new meta."""
    node_id = int(meta["node_id"])
    wal, recovered = WAL.open(data_dir)
    try:
        store = KVStore()
        newest, entries = recover(data_dir, recovered, store, logger)
        context = newest.members if newest is not None else None
        term = newest.term if newest is not None else 0
        for entry in entries:
            if entry.kind == ENTRY_CONFIG:
                store.mark_applied(entry.index)
                context = config_context(entry.data) or context
            elif not entry.data:
                store.mark_applied(entry.index)
            else:
                try:
                    store.apply(orjson.loads(entry.data), index=entry.index, normalized=True)
                except KVError:
                    pass  # a failed command, as on every member: applied, changing nothing
                except (ValueError, KeyError, TypeError) as e:
                    # Not a command (the applier skips such an entry the same way).
                    logger.error("entry {} holds no valid command ({!r}); skipped", entry.index, e)
                    if store.applied_index < entry.index:
                        store.mark_applied(entry.index)
            term = entry.term
        hard_term = max(recovered.hard_state.current_term, term)
    finally:
        wal.close()
    if store.applied_index < 1:
        raise NewClusterError(f"{data_dir} holds no log to start a new cluster from")
    old_members, next_id = decode_context(context) if context else ({}, node_id + 1)
    document = encode_state(store.capture(), pause=False)

    # The new files are made beside the old ones, then swapped in: a crash leaves the
    # old files in place (before the swap) or the new ones (after).
    staging = os.path.join(data_dir, ".force-new-cluster.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    write_one_member(
        staging, document=document, index=store.applied_index, term=term, hard_term=hard_term,
        node_id=node_id, name=name, address=address, next_id=next_id,
    )
    aside = os.path.join(data_dir, "before-force-new-cluster-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    try:
        os.makedirs(aside)
        for sub in ("wal", "snap"):
            if os.path.exists(os.path.join(data_dir, sub)):
                os.rename(os.path.join(data_dir, sub), os.path.join(aside, sub))
        for sub in ("wal", "snap"):
            os.rename(os.path.join(staging, sub), os.path.join(data_dir, sub))
        os.rmdir(staging)
        fsync_dir(data_dir)
    except OSError as e:
        raise StorageError(f"cannot swap in the new cluster's files in {data_dir}: {e}") from e
    new_meta = {k: v for k, v in meta.items() if k != "seed_members"}
    new_meta.update(name=name, address=address, port=port)
    write_meta(data_dir, new_meta)
    logger.bind(event="ForceNewCluster").warning(
        "forced a new cluster of one: member {} of cluster {} now alone at index {} (revision {}, {} keys); "
        "removed members {}; the old wal/ and snap/ are in {}",
        node_id, new_meta["cluster_id"], store.applied_index, store.current_revision, len(store),
        sorted(m for m in old_members if m != node_id) or "none", aside,
    )
    return new_meta


# --------------------------------------------------------------------------- the command


def restore_main(argv: list[str]) -> int:
    """`python -m abcd restore FILE --data-dir DIR --name NAME --advertise HOST:PORT`."""
    import argparse
    import sys

    p = argparse.ArgumentParser(
        prog="abcd restore",
        description="Create the data dir of a new one-member cluster from a backup (abcdctl snapshot save); "
        "start it with `python -m abcd PORT --data-dir DIR`, then join the others to it.",
    )
    p.add_argument("file", help="the backup file")
    p.add_argument("--data-dir", required=True, help="the new member's data dir (must not exist or be empty)")
    p.add_argument("--name", required=True, help="the new member's name")
    p.add_argument("--advertise", required=True, metavar="HOST:PORT", help="where peers and clients will reach it")
    args = p.parse_args(argv)
    try:
        summary = restore(args.file, data_dir=args.data_dir, name=args.name, address=args.advertise)
    except (NewClusterError, StorageError) as e:
        print(f"abcd restore: error: {e}", file=sys.stderr)
        return 1
    print(
        f"restored {args.file} into {args.data_dir}: a new cluster {summary['cluster_id']} of one member "
        f"({summary['name']} at {summary['address']}), revision {summary['revision']}, index {summary['index']}, "
        f"{summary['keys']} keys; start it with: python -m abcd {summary['port']} --data-dir {args.data_dir} "
        f"--name {summary['name']}"
    )
    return 0
