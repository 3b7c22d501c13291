"""Throwaway TLS material for the local stack: one self-signed cert that is its own CA.

The same files serve Python `ssl`/requests (`ca`), Go servers such as docker-registry
(`cert`/`key`) and skopeo (`cert_dir()`, a directory holding `ca.crt`). Not for anything
that leaves the machine.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=3)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a server certificate, its key and the CA bundle that verifies it."""

    cert: Path
    key: Path
    ca: Path

    def cert_dir(self) -> Path:
        """A directory holding only `ca.crt` (a copy of `ca`), as skopeo's `--*-cert-dir` wants."""
        directory = self.ca.parent / f"{self.ca.stem}.certs.d"
        target = directory / "ca.crt"
        if not target.exists() or target.read_bytes() != self.ca.read_bytes():
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.ca, target)
        return directory


def make_throwaway_cert(
    directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> TlsFiles:
    """Write a self-signed EC P-256 cert valid for `hosts` (IPs or DNS names) for a few days."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "release-workflow sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
    ])
    now = datetime.now(UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_san(host) for host in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), False)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(cert=directory / "cert.pem", key=directory / "key.pem",
                     ca=directory / "cert.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    files.key.chmod(0o600)
    return files


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
