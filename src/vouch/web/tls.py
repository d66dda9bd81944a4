"""The development TLS certificate of the embedded default: self-signed for
localhost, made with ``cryptography`` on first run, key kept 0600.

It is valid for 90 days (Mozilla's intermediate profile allows at most 366; 90 is what
public CAs are moving to) and made anew at start once fewer than 30 days are left, so a
server that is simply restarted never serves an expired or soon-expiring certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 90
RENEW_DAYS_LEFT = 30


def ensure_dev_certificate(directory: Path) -> tuple[Path, Path]:
    """The certificate and key paths, after making them if they are missing, unreadable
    or within RENEW_DAYS_LEFT of expiry."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if not needs_renewal(cert_path, key_path):
        return cert_path, key_path
    _write(cert_path, key_path)
    return cert_path, key_path


def needs_renewal(cert_path: Path, key_path: Path, now: datetime.datetime | None = None) -> bool:
    """True when either file is missing or unreadable, the key is not the certificate's
    (a start killed between the two writes), or expiry is less than RENEW_DAYS_LEFT away."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return True
    if key.public_key() != cert.public_key():
        return True
    now = now or datetime.datetime.now(datetime.UTC)
    return cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_DAYS_LEFT)


def _write(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vouch development"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Key identifiers: RFC 5280 path validation (cryptography's, hence sslyze's) refuses a
        # server certificate without an Authority Key Identifier (make attack, tls step).
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Each file is written beside its place and renamed over it: a start killed half-way
    # leaves the old pair or a whole new file, never a truncated one.
    _replace(key_path, key_pem)
    _replace(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
