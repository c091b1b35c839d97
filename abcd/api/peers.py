"""Paths only peers may use under --peer-client-cert-auth: `/v1/raft` and a join.

The port is shared with clients (docs/security.md), so the TLS layer asks for a
certificate without demanding one; these paths then demand a certificate issued by
the peer CA (and, with --peer-cert-allowed-cn, one of the allowed names).  A refusal
is a 403 that says why, logged with the caller's address; the node keeps serving.
"""
from __future__ import annotations

import loguru
from aiohttp import web

from .jsonio import error_response

TLS: web.AppKey = web.AppKey("tls", object)


def peer_refusal(request: web.Request) -> str | None:
    """Why this request may not act as a peer; None when it may (or peers are not checked)."""
    tls = request.app.get(TLS)
    if tls is None:
        return None
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return tls.peer_refusal(ssl_object)


def refuse_non_peer(request: web.Request) -> web.Response | None:
    reason = peer_refusal(request)
    if reason is None:
        return None
    loguru.logger.bind(event="PeerRefused").warning(
        "refused {} {} from {}: {}", request.method, request.path, request.remote, reason
    )
    return error_response(
        403, "forbidden", f"{request.method} {request.path} is for peers of this cluster (--peer-client-cert-auth): {reason}"
    )


def peers_only(handler):
    async def guarded(request: web.Request):
        return refuse_non_peer(request) or await handler(request)

    return guarded
