"""Who a node is: resume from meta.json, bootstrap a new cluster, or join one.

* meta.json exists: resume that identity and log (`--join` is ignored).
* no meta.json, no --join: bootstrap a cluster of one.  The WAL is seeded with a
  configuration entry naming this node (id 1) and its address, at term 1, then
  meta.json is written.  That order matters: a node that finds meta.json always
  finds its seed entry; a crash in between leaves a WAL and no meta.json, which
  `resolve_identity` refuses with a message rather than guess.
* no meta.json, --join: ask a member to add this node (POST /v1/members, with the
  cluster token if the node has one; followers forward it to the leader).  The leader
  assigns the id and answers with the member list, kept in meta.json as
  `seed_members` so that the node can reach its peers before its log holds any
  configuration.  The log itself comes from the leader.  A refusal (403: no or a wrong
  token) stops the node with the cluster's reason.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import aiohttp
import loguru

from ..raft.config import Configuration, encode_config
from ..raft.effects import Persist
from ..raft.messages import ENTRY_CONFIG, Entry, HardState
from ..storage import WAL, read_meta, write_meta
from .forward import CLUSTER_TOKEN_HEADER
from .membership import MemberInfo, encode_context


class IdentityError(RuntimeError):
    """The node cannot establish who it is; the message says why and what to do."""


def _wal_has_segments(data_dir: str) -> bool:
    wal_dir = os.path.join(data_dir, "wal")
    return os.path.isdir(wal_dir) and any(name.endswith(".wal") for name in os.listdir(wal_dir))


def bootstrap(data_dir: str, name: str, address: str, port: int) -> dict[str, Any]:
    """Create a one-node cluster in an empty data dir; returns the new meta."""
    if _wal_has_segments(data_dir):
        raise IdentityError(
            f"{data_dir} has a WAL but no meta.json (a bootstrap or join was interrupted?); "
            "remove the data dir to start afresh"
        )
    node_id = 1
    context = encode_context({node_id: MemberInfo(name, address, join_id=uuid.uuid4().hex)}, next_id=node_id + 1)
    seed = Entry(1, 1, encode_config(Configuration(frozenset({node_id})), context), ENTRY_CONFIG)
    wal, _ = WAL.open(data_dir)
    try:
        wal.write(Persist(1, HardState(1, None), (seed,)))
    finally:
        wal.close()  # close() fsyncs
    meta = {
        "node_id": node_id,
        "cluster_id": uuid.uuid4().hex[:16],
        "name": name,
        "address": address,
        "port": port,
    }
    write_meta(data_dir, meta)
    return meta


async def join(
    targets: list[str],
    *,
    data_dir: str,
    name: str,
    address: str,
    port: int,
    timeout: float = 60.0,
    token: str | None = None,
    logger=loguru.logger,
    tls=None,
) -> dict[str, Any]:
    """Ask the cluster (through any of `targets`) to add this node; returns the new meta.

    With `tls` (abcd.tls.TlsContexts) the request goes over https with the node's peer certificate.
    """
    if _wal_has_segments(data_dir):
        raise IdentityError(
            f"{data_dir} has a WAL but no meta.json; remove the data dir to join afresh"
        )
    # One join_id for every retry of this join: a retry whose first attempt was added
    # already gets that member back; a node that joined before, lost its data dir and
    # comes back at the same address has a new one, and is refused (cluster_ops).
    body = {"address": address, "name": name, "learner": True, "join_id": uuid.uuid4().hex}
    headers = {CLUSTER_TOKEN_HEADER: token} if token is not None else {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.1
    last_error = "no member answered"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        while True:
            for target in targets:
                try:
                    url = f"{'https' if tls is not None else 'http'}://{target}/v1/members"
                    ssl = tls.dial if tls is not None else True
                    async with session.post(url, json=body, headers=headers, ssl=ssl) as reply:
                        payload = await reply.json(content_type=None)
                        if reply.status == 200:
                            return _joined_meta(payload, name=name, address=address, port=port, data_dir=data_dir)
                        message = payload.get("error") if isinstance(payload, dict) else payload
                        if reply.status < 500:
                            raise IdentityError(
                                f"the cluster refused to add this node ({target} answered {reply.status}): {message}"
                            )
                        last_error = f"{target} answered {reply.status}: {message}"
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as e:
                    last_error = f"{target}: {type(e).__name__}: {e}"
                logger.info("joining through {}: {}; retrying", target, last_error)
            if loop.time() + delay > deadline:
                raise IdentityError(f"could not join the cluster within {timeout:g} s: {last_error}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _joined_meta(payload: Any, *, name: str, address: str, port: int, data_dir: str) -> dict[str, Any]:
    try:
        member = payload["member"]
        meta = {
            "node_id": int(member["id"]),
            "cluster_id": str(payload["cluster_id"]),
            "name": name,
            "address": address,
            "port": port,
            "seed_members": [
                {"id": int(m["id"]), "name": str(m["name"]), "address": str(m["address"])}
                for m in payload["members"]
                if m.get("address")
            ],
        }
    except (KeyError, TypeError, ValueError) as e:
        raise IdentityError(f"the cluster's answer to the join is not understood ({e!r}): {payload!r}") from None
    write_meta(data_dir, meta)
    return meta


def load_meta(data_dir: str) -> dict[str, Any] | None:
    meta = read_meta(data_dir)
    if meta is None:
        return None
    for field in ("node_id", "cluster_id"):
        if field not in meta:
            raise IdentityError(f"{os.path.join(data_dir, 'meta.json')} has no {field!r}")
    return meta
