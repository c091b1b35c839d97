"""Where the client's nodes are and how to reach them: endpoint addresses, the preferred
one, TLS settings, and what a failed connection is called in an error message."""
from __future__ import annotations

import os
import ssl as ssl_module
from urllib.parse import urlsplit

import aiohttp
import yarl

DEFAULT_ENDPOINTS = ("127.0.0.1:8080",)


def parse_endpoint(endpoint: str, default_scheme: str = "http") -> str:
    """'H:P', 'http://H:P' or 'https://H:P' -> the base URL; ValueError if malformed.

    A bare 'H:P' gets `default_scheme` (https when the client has TLS settings)."""
    text = endpoint.strip()
    if "://" not in text:
        text = f"{default_scheme}://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError(f"endpoint {endpoint!r} is not HOST:PORT (or http[s]://HOST:PORT)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


class Endpoints:
    """The base URLs a client may call, and which one it prefers now."""

    def __init__(self, bases: list[str]) -> None:
        if not bases:
            raise ValueError("at least one endpoint is needed")
        self.bases = bases
        self.current = 0  # index of the preferred endpoint

    def __len__(self) -> int:
        return len(self.bases)

    @property
    def preferred(self) -> str:
        return self.bases[self.current]

    def in_turn(self) -> list[str]:
        """Every endpoint once, the preferred one first."""
        count = len(self.bases)
        return [self.bases[(self.current + i) % count] for i in range(count)]

    def rotate(self, failed: str | None) -> None:
        """Prefer the next endpoint after `failed` (None: after the preferred one).
        Many calls fail on the same endpoint at once: only the first one moves on."""
        if failed is None or self.bases[self.current] == failed:
            self.current = (self.current + 1) % len(self.bases)

    def adopt(self, url: str) -> str:
        """Make a redirect target the preferred endpoint (adding it if new)."""
        target = yarl.URL(url)
        base = parse_endpoint(f"{target.scheme}://{target.host}:{target.port}")
        if base not in self.bases:
            self.bases.append(base)
        self.current = self.bases.index(base)
        return base


def tls_context(
    *, cacert: str | None = None, cert: str | None = None, key: str | None = None
) -> ssl_module.SSLContext | None:
    """The SSLContext for these files (None when none is given): trust `cacert` (else the
    system's CAs), present `cert`/`key` when the cluster demands client certificates."""
    if cacert is None and cert is None and key is None:
        return None
    if key is not None and cert is None:
        raise ValueError("a key needs its certificate (--cert)")
    for name, path in (("cacert", cacert), ("cert", cert), ("key", key)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"{name} {path}: no such file")
    context = ssl_module.create_default_context(cafile=cacert)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def connection_failure(e: Exception) -> str:
    """A short description of a connection error."""
    if isinstance(e, aiohttp.ServerDisconnectedError):
        # What a plaintext client sees from a node that speaks TLS.
        return "the node closed the connection without answering (if it speaks TLS, use https:// and its CA: --cacert)"
    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    return str(e) or type(e).__name__
