"""`python -m abcd demo --tls`: a CA and certificates made once in the demo's data folder.

One CA signs everything: the nodes' certificate (what their port presents, to clients
and to each other, for 127.0.0.1 and localhost) and a client certificate for abcdctl.
The nodes demand a peer certificate from that CA on the Raft link and for joins
(--peer-client-cert-auth); clients need only trust the CA.  A later run reuses the
files, so a browser told to trust the CA once keeps trusting it.
"""
from __future__ import annotations

import os
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoTls:
    directory: str

    @property
    def ca(self) -> str:
        return os.path.join(self.directory, "ca.crt")

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def node_args(self) -> list[str]:
        return [
            "--cert-file", self.path("node.crt"), "--key-file", self.path("node.key"),
            "--peer-trusted-ca-file", self.ca, "--peer-client-cert-auth",
        ]

    def server_context(self) -> ssl.SSLContext:
        """For the dashboard's own port."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.path("node.crt"), self.path("node.key"))
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)


def ensure(directory: str) -> DemoTls:
    """The demo's certificates in `directory`, made on first use."""
    tls = DemoTls(os.path.abspath(directory))
    names = ("ca.crt", "node.crt", "node.key", "client.crt", "client.key")
    if all(os.path.isfile(tls.path(n)) for n in names):
        return tls
    from ..tls.certs import Authority  # needs cryptography: pip install 'abcd[tls]'

    ca = Authority("abcd demo CA")
    ca.write_cert(tls.ca)
    ca.issue("abcd-demo-node").write(tls.directory, "node")
    ca.issue("abcd-demo-client").write(tls.directory, "client")
    return tls
