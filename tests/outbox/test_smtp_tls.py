"""P9: mail leaves over TLS against a real SMTP server (aiosmtpd), with the server's
certificate verified; an untrusted or missing TLS never falls back to plain text."""

from __future__ import annotations

import datetime
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core import mail
from django.test import override_settings

from vouch.outbox.backends import SMTPBackend

SMTP_BACKEND = "vouch.outbox.backends.SMTPBackend"


def make_certificate(directory: Path, dns_names: list[str]) -> tuple[Path, Path]:
    """A self-signed server certificate for exactly ``dns_names`` (no IP addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """Keeps every message the server accepts, with whether the session was encrypted."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.logins: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        ssl_object = server.transport.get_extra_info("ssl_object")
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "content": envelope.content.decode("utf-8", "replace"),
                "tls": ssl_object is not None,
                "starttls": session.ssl is not None,  # aiosmtpd sets this only on STARTTLS
                "version": ssl_object.version() if ssl_object else None,
            }
        )
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append({"tls": session.ssl is not None, "user": auth_data.login, "password": auth_data.password})
        return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == b"s3cret:/@pass")


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    return make_certificate(tmp_path / "tls", ["localhost"])


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def starttls_server(certificate):
    handler = Collector()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=handler.authenticate,
        auth_require_tls=True,
    )
    controller.start()
    controller.collector = handler
    yield controller
    controller.stop()


@pytest.fixture
def plain_server():
    """An SMTP server that does not offer STARTTLS at all."""
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.collector = handler
    yield controller
    controller.stop()


@pytest.fixture
def smtps_server(certificate):
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=_server_context(certificate))
    controller.start()
    controller.collector = handler
    yield controller
    controller.stop()


def smtp_settings(port: int, ca_file: Path | str = "", **extra) -> dict:
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": "localhost",
        "EMAIL_PORT": port,
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_TIMEOUT": 10,
        "VOUCH_SMTP_CA_FILE": str(ca_file),
        **extra,
    }


def attempt() -> int:
    return mail.send_mail("Should not arrive", "b", "vouch@localhost", ["a@example.com"])


def test_mail_is_delivered_over_starttls(starttls_server, certificate):
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        sent = mail.send_mail("TLS check", "Body over TLS.", "vouch@localhost", ["someone@example.com"])
    assert sent == 1
    (received,) = starttls_server.collector.messages
    assert received["tls"] is True
    assert received["starttls"] is True
    assert received["version"] in {"TLSv1.2", "TLSv1.3"}
    assert received["to"] == ["someone@example.com"]
    assert "Subject: TLS check" in received["content"]
    assert "Body over TLS." in received["content"]


def test_credentials_are_sent_only_inside_tls(starttls_server, certificate):
    settings = smtp_settings(
        starttls_server.port, certificate[0], EMAIL_HOST_USER="mailer", EMAIL_HOST_PASSWORD="s3cret:/@pass"
    )
    with override_settings(**settings):
        assert mail.send_mail("Auth", "b", "vouch@localhost", ["a@example.com"]) == 1
    assert starttls_server.collector.logins == [{"tls": True, "user": b"mailer", "password": b"s3cret:/@pass"}]
    assert starttls_server.collector.messages[0]["tls"] is True


@pytest.mark.django_db
def test_application_mail_goes_out_over_tls(starttls_server, certificate, client):
    """A real flow (password reset) through the configured SMTP backend."""
    from tests.conftest import make_user

    make_user("smtp.user@example.com")
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        response = client.post("/accounts/password/reset/", {"email": "smtp.user@example.com"})
    assert response.status_code == 302
    (received,) = starttls_server.collector.messages
    assert received["tls"] is True
    assert received["to"] == ["smtp.user@example.com"]
    assert "/accounts/password/reset/key/" in received["content"]


def test_untrusted_certificate_fails_instead_of_falling_back(starttls_server):
    with override_settings(**smtp_settings(starttls_server.port, ca_file="")):
        pytest.raises(ssl.SSLCertVerificationError, attempt)
    assert starttls_server.collector.messages == []


def test_certificate_for_another_name_fails(starttls_server, certificate):
    """The certificate is for "localhost" only; connecting by address must not pass."""
    with override_settings(**smtp_settings(starttls_server.port, certificate[0], EMAIL_HOST="127.0.0.1")):
        pytest.raises(ssl.SSLCertVerificationError, attempt)
    assert starttls_server.collector.messages == []


def test_a_different_ca_is_not_trusted(starttls_server, tmp_path):
    other_ca, _ = make_certificate(tmp_path / "other", ["localhost"])
    with override_settings(**smtp_settings(starttls_server.port, other_ca)):
        pytest.raises(ssl.SSLCertVerificationError, attempt)
    assert starttls_server.collector.messages == []


def test_server_without_starttls_gets_no_mail(plain_server, certificate):
    with override_settings(**smtp_settings(plain_server.port, certificate[0])):
        pytest.raises(smtplib.SMTPNotSupportedError, attempt)
    assert plain_server.collector.messages == []


def test_implicit_tls_smtps(smtps_server, certificate):
    settings = smtp_settings(smtps_server.port, certificate[0], EMAIL_USE_TLS=False, EMAIL_USE_SSL=True)
    with override_settings(**settings):
        assert mail.send_mail("SMTPS", "b", "vouch@localhost", ["a@example.com"]) == 1
    (received,) = smtps_server.collector.messages
    assert received["tls"] is True
    assert received["starttls"] is False  # encrypted from the first byte
    assert received["version"] in {"TLSv1.2", "TLSv1.3"}


def test_implicit_tls_with_untrusted_certificate_fails(smtps_server):
    settings = smtp_settings(smtps_server.port, "", EMAIL_USE_TLS=False, EMAIL_USE_SSL=True)
    with override_settings(**settings):
        pytest.raises(ssl.SSLCertVerificationError, attempt)
    assert smtps_server.collector.messages == []


def test_backend_context_verifies_and_refuses_old_tls(certificate):
    with override_settings(VOUCH_SMTP_CA_FILE=str(certificate[0])):
        context = SMTPBackend().ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


# -- VOUCH_SMTP_URL ----------------------------------------------------------------

_PROBE = (
    "import json, vouch.settings as s; print(json.dumps({k: getattr(s, k, None) for k in "
    "('EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_USE_TLS', 'EMAIL_USE_SSL', "
    "'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'VOUCH_SMTP_CA_FILE')}))"
)


def load_settings(tmp_path, **env_vars) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update({"VOUCH_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": os.pathsep.join(sys.path), **env_vars})
    return subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def settings_for(tmp_path, **env_vars) -> dict:
    result = load_settings(tmp_path, **env_vars)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_smtp_url_means_starttls(tmp_path):
    loaded = settings_for(
        tmp_path, VOUCH_SMTP_URL="smtp://mailer:s3cret%3A%2F%40pass@mail.example.com", VOUCH_SMTP_CA_FILE="/ca.pem"
    )
    assert loaded["EMAIL_BACKEND"] == SMTP_BACKEND
    assert loaded["EMAIL_HOST"] == "mail.example.com"
    assert loaded["EMAIL_PORT"] == 587
    assert loaded["EMAIL_USE_TLS"] is True
    assert loaded["EMAIL_USE_SSL"] is False
    assert loaded["EMAIL_HOST_USER"] == "mailer"
    assert loaded["EMAIL_HOST_PASSWORD"] == "s3cret:/@pass"  # percent-encoding undone
    assert loaded["VOUCH_SMTP_CA_FILE"] == "/ca.pem"


def test_smtps_url_means_implicit_tls(tmp_path):
    loaded = settings_for(tmp_path, VOUCH_SMTP_URL="smtps://mail.example.com:2465")
    assert loaded["EMAIL_PORT"] == 2465
    assert loaded["EMAIL_USE_SSL"] is True
    assert loaded["EMAIL_USE_TLS"] is False
    assert settings_for(tmp_path, VOUCH_SMTP_URL="smtps://mail.example.com")["EMAIL_PORT"] == 465


def test_no_smtp_url_means_the_outbox(tmp_path):
    assert settings_for(tmp_path)["EMAIL_BACKEND"] == "vouch.outbox.backends.OutboxBackend"


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp+plain://mail.example.com", "mail.example.com:25", "lmtp://x"]
)
def test_other_smtp_url_schemes_are_refused(tmp_path, url):
    result = load_settings(tmp_path, VOUCH_SMTP_URL=url)
    assert result.returncode != 0
    assert "VOUCH_SMTP_URL must start with smtp://" in result.stderr
