"""Refused TLS handshakes, logged with their reason.

asyncio and uvloop close a connection whose handshake failed (a plaintext client, a
certificate from the wrong CA, an expired one, none where one is required) without a
word outside debug mode.  The server context's `sslobject_class` is the one hook both
loops go through for every connection: its handshake is wrapped here so that a failure
is logged, with the reason OpenSSL gave, before the connection is closed.  (The TLS
layer does not tell the object whose socket it is, so the line names no address.)
"""
from __future__ import annotations

import ssl
import time
from typing import Any

import loguru

# The same refusal is logged as a warning at most this often (a peer redialing with
# backoff would otherwise fill the log); the repeats at debug level.
REPEAT_SECONDS = 30.0


class RefusalLog:
    def __init__(self, logger: Any = loguru.logger) -> None:
        self._logger = logger
        self._last_logged: dict[str, float] = {}
        self.refused = 0

    def install(self, context: ssl.SSLContext) -> None:
        log = self

        class LoggedHandshake(ssl.SSLObject):
            def do_handshake(self) -> None:
                try:
                    super().do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    raise  # not a failure: the handshake needs more bytes
                except ssl.SSLError as e:
                    log.refuse(e)
                    raise

        context.sslobject_class = LoggedHandshake

    def refuse(self, error: ssl.SSLError) -> None:
        self.refused += 1
        reason = explain(error)
        now = time.monotonic()
        level = "DEBUG"
        if now - self._last_logged.get(reason, -REPEAT_SECONDS) >= REPEAT_SECONDS:
            self._last_logged[reason] = now
            level = "WARNING"
        self._logger.bind(event="TlsRefused").log(level, "refused a connection: TLS handshake failed: {}", reason)


def explain(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None) or ""
    text = getattr(error, "verify_message", None) or getattr(error, "strerror", None) or str(error)
    if reason in ("HTTP_REQUEST", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL"):
        return f"{text} (a plaintext client? this node speaks https only)"
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return f"{text} (the client presented no certificate; --client-cert-auth requires one)"
    if reason in ("CERTIFICATE_VERIFY_FAILED", "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_EXPIRED"):
        return f"{text} (the client's certificate is not signed by a trusted CA, or is expired)"
    return text
