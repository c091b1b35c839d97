"""TLS settings and contexts in-process: what a wrong combination of flags says, and a
reload that fails keeping the certificate in use.  Certificates are made here."""
from __future__ import annotations

import asyncio
import socket
import ssl
import threading

import pytest

from abcd.__main__ import UsageError, build_parser, plan
from abcd.tls import TlsContexts, TlsSettings
from abcd.tls.certs import Authority


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = Authority("test CA")
    ca_file = ca.write_cert(str(root / "ca.crt"))
    cert, key = ca.issue("node").write(str(root), "node")
    other_cert, other_key = ca.issue("other").write(str(root), "other")
    return {"root": root, "ca": ca, "ca_file": ca_file, "cert": cert, "key": key,
            "other_cert": other_cert, "other_key": other_key}


@pytest.mark.parametrize("flags, message", [
    (["--cert-file", "{cert}"], "--cert-file and --key-file go together"),
    (["--peer-key-file", "{key}"], "--peer-cert-file and --peer-key-file go together"),
    (["--cert-file", "{cert}", "--key-file", "{key}", "--client-cert-auth"], "--client-cert-auth needs --trusted-ca-file"),
    (["--cert-file", "{cert}", "--key-file", "{key}", "--peer-client-cert-auth"],
     "--peer-client-cert-auth needs --peer-trusted-ca-file"),
    (["--trusted-ca-file", "{ca_file}"], "--trusted-ca-file needs --cert-file and --key-file"),
    (["--cert-file", "{cert}", "--key-file", "{key}", "--peer-trusted-ca-file", "{ca_file}",
      "--peer-cert-allowed-cn", "n1"], "--peer-cert-allowed-cn only applies with --peer-client-cert-auth"),
    (["--cert-file", "/nonexistent/node.crt", "--key-file", "{key}"], "--cert-file /nonexistent/node.crt: no such file"),
])
def test_a_wrong_combination_of_tls_flags_is_a_usage_error_naming_the_flags(pki, flags, message):
    argv = ["8080", *(f.format(**pki) for f in flags)]
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        plan(build_parser().parse_args(argv))


def test_the_old_hidden_tls_flags_are_gone():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["8080", "--tls-cert", "x"])


def _handshake_serial(context: ssl.SSLContext, ca_file: str) -> int:
    """Serve one TLS handshake with `context` on a loopback socket; the client's view of the serial."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client = ssl.create_default_context(cafile=ca_file)
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                serial = int(tls.getpeercert()["serialNumber"], 16)
                tls.send(b"x")
                return serial
    finally:
        thread.join(5)
        listener.close()


def test_a_reload_that_fails_keeps_serving_the_previous_certificate(pki, tmp_path):
    cert, key = pki["ca"].issue("node").write(str(tmp_path), "node")
    contexts = TlsContexts(TlsSettings(cert_file=cert, key_file=key))
    before = _handshake_serial(contexts.server, pki["ca_file"])

    # A certificate written without its key (a rotation half done): refused, still serving.
    pair = pki["ca"].issue("node")
    with open(cert, "wb") as f:
        f.write(pair.cert_pem)
    assert contexts.reload("test") is False
    assert _handshake_serial(contexts.server, pki["ca_file"]) == before

    # Then the key: the next reload serves the new certificate.
    with open(key, "wb") as f:
        f.write(pair.key_pem)
    assert contexts.reload_if_changed() is True
    after = _handshake_serial(contexts.server, pki["ca_file"])
    assert after != before


def test_nothing_reloads_when_no_file_changed(pki):
    contexts = TlsContexts(TlsSettings(cert_file=pki["cert"], key_file=pki["key"]))
    assert contexts.reload_if_changed() is False and contexts.reloads == 0
