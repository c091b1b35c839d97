"""The node's SSL contexts, built from its TLS settings and rebuilt when the files change.

`server` is the listener's context; `dial` is what the node presents and trusts when it
dials a peer (Raft, join, forwarding).  Both are reloaded together on SIGHUP, or when a
file's size or modification time changes (checked once a second): connections already
open keep the certificate they were made with, new ones get the new files, so a
certificate is rotated without a restart.  The listener holds its context for good, so
a reload loads the new files into that same object (after checking them on a fresh
one): its certificate and key are replaced, while trusted CAs are only ever added
(removing a CA from the trusted files takes a restart).  A reload that fails (a
half-written key, a key that does not match its certificate) is logged and the
current files stay in use: the node keeps serving.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import ssl
import tempfile
from typing import Any

import loguru

from .handshakes import RefusalLog
from .settings import TlsSettings

POLL_SECONDS = 1.0


class TlsContexts:
    def __init__(self, settings: TlsSettings, *, logger: Any = loguru.logger) -> None:
        self.settings = settings
        self._logger = logger
        self._stamps = _stamps(settings)
        # Raises at start-up: a node whose files do not load must not start.
        self.server, self.dial, self._peer_issuers = _build(settings)
        self.refusals = RefusalLog(logger)
        self.refusals.install(self.server)
        self.reloads = 0

    def reload(self, why: str) -> bool:
        """Read the files again; on failure keep the current contexts and say why."""
        stamps = _stamps(self.settings)
        try:
            # The files are copied first, and both the check (on fresh contexts) and the
            # live context read the copies: a file replaced in between cannot slip an
            # unchecked pair (a certificate without its key) into the listener.
            with tempfile.TemporaryDirectory(prefix="abcd-tls-") as snapshot:
                files = _snapshot(self.settings, snapshot)
                _, dial, issuers = _build(files)
                _load_server_files(self.server, files)
            self.dial, self._peer_issuers = dial, issuers
        except (OSError, ssl.SSLError, ValueError) as e:
            self._stamps = stamps  # retried at the next change, not every second
            self._logger.bind(event="TlsReloadFailed").error(
                "TLS files not reloaded ({}): {}; still serving the previous certificates", why, e
            )
            return False
        self._stamps = stamps
        self.reloads += 1
        self._logger.bind(event="TlsReloaded").info("TLS files reloaded ({})", why)
        return True

    def reload_if_changed(self) -> bool:
        if _stamps(self.settings) == self._stamps:
            return False
        return self.reload("a file changed")

    async def watch(self) -> None:
        """Poll the files for changes until cancelled."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            self.reload_if_changed()

    def peer_refusal(self, ssl_object: ssl.SSLObject | None) -> str | None:
        """Why a connection may not act as a peer (None: it may), under --peer-client-cert-auth."""
        if not self.settings.peer_client_cert_auth:
            return None
        if ssl_object is None:
            return "the connection is not TLS"
        cert = ssl_object.getpeercert()
        if not cert:
            return "it presented no certificate (a peer must present one signed by the peer CA: --peer-cert-file)"
        name = common_name(cert)
        # OpenSSL checked the chain against every CA this node trusts (clients' and
        # peers'); here it must be the peer CA that signed it.
        if tuple(cert.get("issuer", ())) not in self._peer_issuers:
            return f"its certificate (CN={name}) is not issued by the peer CA (--peer-trusted-ca-file)"
        allowed = self.settings.peer_allowed_cn
        if allowed and name not in allowed:
            return f"its certificate's common name {name!r} is not in --peer-cert-allowed-cn ({', '.join(allowed)})"
        return None


def common_name(cert: dict) -> str | None:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def _snapshot(s: TlsSettings, directory: str) -> TlsSettings:
    """`s` with every file copied into `directory` (readable by this user only)."""
    copies = {}
    for field in ("cert_file", "key_file", "trusted_ca_file", "peer_cert_file", "peer_key_file", "peer_trusted_ca_file"):
        path = getattr(s, field)
        if path:
            copies[field] = os.path.join(directory, field)
            shutil.copyfile(path, copies[field])
    return dataclasses.replace(s, **copies)


def _load_server_files(server: ssl.SSLContext, s: TlsSettings) -> list[str]:
    _load_chain(server, s.cert_file or s.peer_cert_file, s.key_file or s.peer_key_file)
    trusted = [ca for ca in dict.fromkeys((s.trusted_ca_file, s.peer_trusted_ca_file)) if ca]
    for ca in trusted:
        _load_ca(server, ca)
    return trusted


def _build(s: TlsSettings) -> tuple[ssl.SSLContext, ssl.SSLContext, frozenset]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_2
    trusted = _load_server_files(server, s)
    if s.client_cert_auth:
        server.verify_mode = ssl.CERT_REQUIRED
    elif trusted:
        # Asked, not demanded: a peer's certificate is then checked per path (/v1/raft).
        server.verify_mode = ssl.CERT_OPTIONAL

    dial = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    dial.minimum_version = ssl.TLSVersion.TLSv1_2
    ca = s.peer_trusted_ca_file or s.trusted_ca_file
    if ca:
        _load_ca(dial, ca)
    elif s.auto_tls or s.peer_auto_tls:
        # Self-signed certificates vouch for nobody: encrypted, not authenticated.
        dial.check_hostname = False
        dial.verify_mode = ssl.CERT_NONE
    else:
        dial.load_default_certs()
    _load_chain(dial, s.peer_cert_file or s.cert_file, s.peer_key_file or s.key_file)

    issuers: frozenset = frozenset()
    if s.peer_trusted_ca_file:
        reader = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_ca(reader, s.peer_trusted_ca_file)
        issuers = frozenset(tuple(ca["subject"]) for ca in reader.get_ca_certs())
    return server, dial, issuers


def _load_ca(context: ssl.SSLContext, path: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as e:
        raise ValueError(f"cannot load the CA certificates of {path}: {e}") from None


def _load_chain(context: ssl.SSLContext, cert: str | None, key: str | None) -> None:
    if not cert:
        return
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise ValueError(f"cannot load certificate {cert} with key {key}: {e}") from None


def _stamps(s: TlsSettings) -> tuple:
    out = []
    for path in s.files().values():
        try:
            st = os.stat(path)
            out.append((path, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((path, None, None))
    return tuple(out)
