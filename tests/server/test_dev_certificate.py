"""The embedded default's development certificate: at most 90 days (Mozilla's
intermediate profile allows 366), renewed at start once fewer than 30 days are left."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.live import cleanup, make_server
from vouch.web.tls import ensure_dev_certificate


def _served_certificate(server) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # read what is served, whatever it is
    with (
        socket.create_connection(("127.0.0.1", server.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def _write_certificate(directory, days_left: float) -> bytes:
    """A localhost certificate of the old kind (397 days long) with ``days_left`` to go."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=days_left)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - datetime.timedelta(days=397))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(pem)
    return pem


def _lifetime(cert: x509.Certificate) -> datetime.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def test_a_new_certificate_lasts_at_most_90_days(tmp_path):
    cert_path, key_path = ensure_dev_certificate(tmp_path / "tls")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert _lifetime(cert) <= datetime.timedelta(days=90, minutes=5)
    assert cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=89)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600


def test_a_certificate_close_to_expiry_is_made_anew(tmp_path):
    old = _write_certificate(tmp_path, days_left=10)
    cert_path, _ = ensure_dev_certificate(tmp_path)
    assert cert_path.read_bytes() != old
    assert _lifetime(x509.load_pem_x509_certificate(cert_path.read_bytes())) <= datetime.timedelta(days=90, minutes=5)


def test_an_expired_certificate_is_made_anew(tmp_path):
    old = _write_certificate(tmp_path, days_left=-3)
    assert ensure_dev_certificate(tmp_path)[0].read_bytes() != old


def test_a_certificate_with_time_left_is_kept(tmp_path):
    kept = _write_certificate(tmp_path, days_left=60)
    assert ensure_dev_certificate(tmp_path)[0].read_bytes() == kept


def test_a_key_that_is_not_the_certificates_is_replaced(tmp_path):
    # As a start killed between writing the new key and the new certificate would leave it.
    kept = _write_certificate(tmp_path, days_left=60)
    (tmp_path / "key.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path, key_path = ensure_dev_certificate(tmp_path)
    assert cert_path.read_bytes() != kept
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert key.public_key() == x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()


@pytest.mark.server
def test_serve_renews_an_expiring_certificate_and_serves_the_new_one():
    server = make_server()
    old = x509.load_pem_x509_certificate(_write_certificate(server.data_dir / "tls", days_left=5))
    try:
        server.start()
        served = _served_certificate(server)
        assert served.serial_number != old.serial_number
        assert _lifetime(served) <= datetime.timedelta(days=90, minutes=5)
        assert served.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=89)
    finally:
        cleanup(server)
