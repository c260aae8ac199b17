"""The sandbox's own signing keys and TLS certificate, made once and kept in the data dir.

Keeping them on disk means tokens issued before a restart still verify after it,
and a client can pin the sandbox's CA file instead of turning verification off.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with a certificate, published as a JWK under ``kid``."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        return _b64url(self.certificate.fingerprint(hashes.SHA1()))

    def jwk(self, endorsements: list[str] | None = None) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        key: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
        }
        if endorsements is not None:
            key["endorsements"] = endorsements
        return key

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """RS256 JWT; ``kid`` lets a forger claim someone else's key id."""
        key_id = self.kid if kid is None else kid
        return jwt.encode(
            claims,
            self.private_key,
            algorithm="RS256",
            headers={"kid": key_id, "x5t": key_id, "typ": "JWT"},
        )

    @classmethod
    def load_or_create(cls, directory: Path, name: str) -> SigningKey:
        key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
        if key_path.exists() and cert_path.exists():
            key = _load_key(key_path)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            return cls(key, cert)
        key = _new_key()
        cert = _self_signed(key, f"m365perf sandbox {name}")
        _write_private(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert)

    @classmethod
    def ephemeral(cls, name: str) -> SigningKey:
        """A key nobody trusts: what a forger would sign with."""
        key = _new_key()
        return cls(key, _self_signed(key, name))


def certificate_thumbprints(pem: str) -> tuple[str, str]:
    """The base64url SHA-1 and SHA-256 thumbprints (``x5t``, ``x5t#S256``) of a PEM cert."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return (
        _b64url(cert.fingerprint(hashes.SHA1())),
        _b64url(cert.fingerprint(hashes.SHA256())),
    )


def certificate_public_key(pem: str) -> Any:
    return x509.load_pem_x509_certificate(pem.encode()).public_key()


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def ensure_tls(directory: Path, host: str) -> TlsFiles:
    """A private CA and a server certificate for ``host``, 127.0.0.1 and localhost.

    A real CA (not a bare self-signed leaf) so that strict verifiers accept it.
    """
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    marker = directory / "hosts.txt"
    hosts = sorted({host, "127.0.0.1", "localhost"})
    if (
        files.ca_file.exists()
        and files.cert_file.exists()
        and files.key_file.exists()
        and marker.exists()
        and marker.read_text() == ",".join(hosts)
    ):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365perf sandbox CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = _new_key()
    alt_names: list[x509.GeneralName] = []
    for name in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(files.key_file, _key_pem(server_key))
    marker.write_text(",".join(hosts))
    return files
