"""Certificates made on this machine: a CA and the certificates it signs, or a self-signed one.

For `python -m abcd demo --tls`, `--auto-tls`/`--peer-auto-tls` and the tests: nothing
private is ever checked in, every key is made where it is used.  Needs the
`cryptography` package (`pip install abcd[tls]`); the node itself needs only `ssl`
when it is given its files.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as e:  # an optional dependency: say how to get it
    raise ImportError(
        "making certificates needs the cryptography package: pip install 'abcd[tls]' (or pip install cryptography)"
    ) from e

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: str, stem: str) -> tuple[str, str]:
        """Write STEM.crt and STEM.key (readable by the owner only); their paths."""
        os.makedirs(directory, exist_ok=True)
        cert_path = os.path.join(directory, stem + ".crt")
        key_path = os.path.join(directory, stem + ".key")
        _write(cert_path, self.cert_pem, 0o644)
        _write(key_path, self.key_pem, 0o600)
        return cert_path, key_path


class Authority:
    """A certificate authority that signs server, client and peer certificates."""

    def __init__(self, common_name: str = "abcd CA", *, days: int = 3650) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        self._name = name
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + days * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def write_cert(self, path: str) -> str:
        _write(path, self.cert_pem, 0o644)
        return path

    def issue(
        self,
        common_name: str,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        *,
        days: float = 825,
        not_before: datetime.datetime | None = None,
    ) -> Pair:
        """A certificate for `hosts` (IP addresses or DNS names), good as server and as client."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or _now() - DAY
        builder = _leaf(common_name, hosts, key, start, start + days * DAY).issuer_name(self._name)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
        )
        return Pair(builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), _key_pem(key))


def self_signed(common_name: str, hosts: tuple[str, ...], *, days: float = 365) -> Pair:
    """A certificate that vouches for itself (--auto-tls): encryption without a CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = _now() - DAY
    cert = _leaf(common_name, hosts, key, start, start + days * DAY).issuer_name(name).sign(key, hashes.SHA256())
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _leaf(common_name: str, hosts: tuple[str, ...], key, start, end) -> "x509.CertificateBuilder":
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: str, data: bytes, mode: int) -> None:
    # Written beside and renamed: a node reloading its files never reads half of one.
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
