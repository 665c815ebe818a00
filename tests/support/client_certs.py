"""A throw-away CA and client certificates for mutual TLS tests (RFC 8705)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ThrowawayCa:
    """A CA that issues client certificates and a server certificate for 127.0.0.1."""

    def __init__(self, directory: Path, name: str = "test ca") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = self._build(self._name, self._key.public_key(), ca=True)
        self.cert_file = directory / "ca.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _build(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        *,
        ca: bool = False,
        server: bool = False,
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if server:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def issue(self, name: str, *, server: bool = False) -> tuple[Path, Path, str]:
        """(certificate file, key file, PEM text) of a new certificate named ``name``."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = self._build(subject, key.public_key(), server=server)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_file = self.directory / f"{name}.pem"
        key_file = self.directory / f"{name}-key.pem"
        cert_file.write_bytes(pem)
        key_file.write_bytes(_pem_key(key))
        return cert_file, key_file, pem.decode()


def escaped(pem: str) -> str:
    """The PEM as nginx's $ssl_client_escaped_cert passes it."""
    return quote(pem, safe="")
