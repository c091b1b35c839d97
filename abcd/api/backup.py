"""`GET /v1/snapshot`: a backup of this member's key-value store (storage/backup.py).

The store is captured on the event loop, between pipeline steps, so the backup is
exactly the state at one applied index (KVStore.capture copies containers and
shares the immutable KVs: later writes do not show in it); it is encoded in a worker
thread while the node goes on serving, then streamed: the backup header line, then the
snapshot document.  The headers say the same before the body starts:
`X-Abcd-Revision`, `X-Abcd-Index`, `X-Abcd-Keys` and `X-Abcd-Checksum: sha256=<hex>`.
With auth on, only root may take one: it holds every key and the auth state.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from ..node.snapshot_format import encode_state
from ..storage.backup import describe
from ..kv import KVError
from .auth import kv_error, require_root
from .jsonio import NODE

CHUNK = 1024 * 1024


async def snapshot(request: web.Request) -> web.StreamResponse:
    # A backup holds every key and the auth state (password hashes, the token secret).
    try:
        require_root(request, "save a backup")
    except KVError as e:
        return kv_error(e)
    node = request.app[NODE]
    store = node.store
    state = store.capture()
    revision, index, keys = store.current_revision, store.applied_index, len(store)
    loop = asyncio.get_running_loop()
    document = await loop.run_in_executor(None, encode_state, state)
    info = await loop.run_in_executor(None, lambda: describe(document, revision=revision, index=index, keys=keys))
    header = info.header()
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "X-Abcd-Revision": str(revision),
            "X-Abcd-Index": str(index),
            "X-Abcd-Keys": str(keys),
            "X-Abcd-Checksum": f"sha256={info.sha256}",
        }
    )
    response.content_length = len(header) + len(document)
    await response.prepare(request)
    await response.write(header)
    view = memoryview(document)
    for start in range(0, len(view), CHUNK):
        await response.write(view[start : start + CHUNK])
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/snapshot", snapshot)
