"""The TLS flags of one node (docs/operations.md), checked together.

One port serves clients and peers, so the node has one listener: it speaks TLS as soon
as any certificate is configured, and presents `--cert-file` (or, when only the peer
side is configured, `--peer-cert-file`).  The `--peer-*` files are what this node
presents and trusts when it dials a peer (Raft, join, forwarding), and
`--peer-client-cert-auth` makes `GET /v1/raft` and a joining node's `POST /v1/members`
demand a certificate issued by the peer CA (docs/security.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: str | None = None
    key_file: str | None = None
    trusted_ca_file: str | None = None
    client_cert_auth: bool = False
    peer_cert_file: str | None = None
    peer_key_file: str | None = None
    peer_trusted_ca_file: str | None = None
    peer_client_cert_auth: bool = False
    # Common names a peer certificate may carry (empty: any name the peer CA signed).
    peer_allowed_cn: tuple[str, ...] = ()
    # Self-signed certificates made in the data dir; peers are then encrypted but not
    # authenticated (no CA can vouch for a certificate a node made itself).
    auto_tls: bool = False
    peer_auto_tls: bool = False

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("--cert-file and --key-file go together: give both or neither")
        if bool(self.peer_cert_file) != bool(self.peer_key_file):
            raise ValueError("--peer-cert-file and --peer-key-file go together: give both or neither")
        if self.client_cert_auth and not self.trusted_ca_file:
            raise ValueError("--client-cert-auth needs --trusted-ca-file (the CA that signs client certificates)")
        if self.client_cert_auth and not self.enabled:
            raise ValueError("--client-cert-auth needs a listener certificate (--cert-file and --key-file)")
        if self.peer_client_cert_auth and not self.peer_trusted_ca_file:
            raise ValueError("--peer-client-cert-auth needs --peer-trusted-ca-file (the CA that signs peer certificates)")
        if self.peer_allowed_cn and not self.peer_client_cert_auth:
            raise ValueError("--peer-cert-allowed-cn only applies with --peer-client-cert-auth")
        if self.trusted_ca_file and not self.enabled:
            raise ValueError("--trusted-ca-file needs --cert-file and --key-file (or --auto-tls)")
        if self.peer_trusted_ca_file and not self.enabled:
            raise ValueError("--peer-trusted-ca-file needs --peer-cert-file and --peer-key-file (or --cert-file)")
        for flag, path in self.files().items():
            if not os.path.isfile(path):
                raise ValueError(f"{flag} {path}: no such file")

    @property
    def enabled(self) -> bool:
        """Whether the node's port speaks TLS (and it dials its peers with wss/https)."""
        return bool(self.cert_file or self.peer_cert_file or self.auto_tls or self.peer_auto_tls)

    def files(self) -> dict[str, str]:
        """The files given, by flag: what a reload reads again."""
        named = {
            "--cert-file": self.cert_file,
            "--key-file": self.key_file,
            "--trusted-ca-file": self.trusted_ca_file,
            "--peer-cert-file": self.peer_cert_file,
            "--peer-key-file": self.peer_key_file,
            "--peer-trusted-ca-file": self.peer_trusted_ca_file,
        }
        return {flag: path for flag, path in named.items() if path}
