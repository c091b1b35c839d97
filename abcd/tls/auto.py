"""--auto-tls / --peer-auto-tls: self-signed certificates made once in the data dir."""
from __future__ import annotations

import dataclasses
import os

from .settings import TlsSettings

AUTO_DIR = "tls"


def with_auto_certificates(settings: TlsSettings, data_dir: str, name: str, hosts: tuple[str, ...]) -> TlsSettings:
    """`settings` with the files --auto-tls/--peer-auto-tls stand for (made on first use, kept after)."""
    changes = {}
    if settings.auto_tls and not settings.cert_file:
        changes["cert_file"], changes["key_file"] = _ensure(data_dir, "auto", name, hosts)
    if settings.peer_auto_tls and not settings.peer_cert_file:
        changes["peer_cert_file"], changes["peer_key_file"] = _ensure(data_dir, "peer-auto", name, hosts)
    return dataclasses.replace(settings, **changes) if changes else settings


def _ensure(data_dir: str, stem: str, name: str, hosts: tuple[str, ...]) -> tuple[str, str]:
    directory = os.path.join(data_dir, AUTO_DIR)
    cert, key = os.path.join(directory, stem + ".crt"), os.path.join(directory, stem + ".key")
    if os.path.isfile(cert) and os.path.isfile(key):
        return cert, key
    from .certs import self_signed

    return self_signed(name, hosts).write(directory, stem)
