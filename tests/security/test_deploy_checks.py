"""Production start-up checks: Vouch refuses to run insecurely (``check --deploy``)."""

from __future__ import annotations

import os
import secrets

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

# The master key check (vault.E010) reads which key versions company keys need from
# the control database.
pytestmark = pytest.mark.django_db

GOOD_KEY = secrets.token_urlsafe(64)


@pytest.fixture
def tls_files(tmp_path):
    from vouch.web.tls import ensure_dev_certificate

    cert, key = ensure_dev_certificate(tmp_path / "tls")
    return str(cert), str(key)


@pytest.fixture
def good(tls_files):
    cert, key = tls_files
    return {
        "PRODUCTION": True,
        "DEBUG": False,
        "SECRET_KEY": GOOD_KEY,
        "SECRET_KEY_FROM_ENV": True,
        "ALLOWED_HOSTS": ["vouch.example.com"],
        "PUBLIC_URL": "https://vouch.example.com",
        "VOUCH_TRUSTED_PROXIES": [],
        "VOUCH_TLS_CERT": cert,
        "VOUCH_TLS_KEY": key,
        "SMTP_URL": "smtps://vouch:secret@relay.example.com:465",
    }


def deploy_check_errors(**overrides) -> str:
    """The text of the deploy check failure, or "" when it passes."""
    with override_settings(**overrides):
        try:
            call_command("check", deploy=True, fail_level="ERROR")
        except SystemCheckError as exc:
            return str(exc)
    return ""


def test_good_production_configuration_passes(good):
    assert deploy_check_errors(**good) == ""


def test_checks_stay_quiet_outside_production(good):
    assert "vouch.E" not in deploy_check_errors(**{**good, "PRODUCTION": False, "DEBUG": True})


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"DEBUG": True}, "vouch.E001"),
        ({"SECRET_KEY_FROM_ENV": False}, "vouch.E002"),
        ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(64)}, "vouch.E002"),
        ({"SECRET_KEY": secrets.token_urlsafe(20)}, "vouch.E002"),
        ({"SECRET_KEY": "ab" * 40}, "vouch.E002"),  # long but not random
        ({"SECRET_KEY": "change-me-" + secrets.token_urlsafe(64)}, "vouch.E002"),
        ({"ALLOWED_HOSTS": ["*"]}, "vouch.E003"),
        ({"ALLOWED_HOSTS": ["vouch.example.com", "*"]}, "vouch.E003"),
        ({"ALLOWED_HOSTS": []}, "vouch.E003"),
        ({"ALLOWED_HOSTS": [""]}, "vouch.E003"),
        ({"PUBLIC_URL": "http://vouch.example.com"}, "vouch.E004"),
        ({"SECURE_SSL_REDIRECT": False}, "vouch.E005"),
        ({"SECURE_HSTS_SECONDS": 3600}, "vouch.E005"),
        ({"SESSION_COOKIE_SECURE": False}, "vouch.E006"),
        ({"CSRF_COOKIE_SECURE": False}, "vouch.E006"),
        ({"VOUCH_TLS_CERT": ""}, "vouch.E007"),
        ({"VOUCH_TLS_KEY": "/nonexistent/key.pem"}, "vouch.E007"),
        ({"SMTP_URL": ""}, "vouch.E008"),
    ],
)
def test_each_insecure_setting_is_refused(good, change, code):
    errors = deploy_check_errors(**{**good, **change})
    assert code in errors
    others = {f"vouch.E00{i}" for i in range(1, 9)} - {code}
    assert not any(other in errors for other in others), errors


def test_missing_tls_files_are_refused(good, tmp_path):
    errors = deploy_check_errors(
        **{**good, "VOUCH_TLS_CERT": str(tmp_path / "missing.pem"), "VOUCH_TLS_KEY": str(tmp_path / "missing.key")}
    )
    assert errors.count("vouch.E007") == 2


def test_a_directory_is_not_a_certificate(good, tmp_path):
    assert "vouch.E007" in deploy_check_errors(**{**good, "VOUCH_TLS_CERT": str(tmp_path)})


def test_tls_files_are_not_needed_behind_a_trusted_proxy(good):
    errors = deploy_check_errors(
        **{**good, "VOUCH_TLS_CERT": "", "VOUCH_TLS_KEY": "", "VOUCH_TRUSTED_PROXIES": ["10.0.0.1"]}
    )
    assert errors == ""


def test_everything_wrong_reports_everything(tmp_path):
    errors = deploy_check_errors(
        PRODUCTION=True,
        DEBUG=True,
        SECRET_KEY="django-insecure-x",
        SECRET_KEY_FROM_ENV=False,
        ALLOWED_HOSTS=["*"],
        PUBLIC_URL="http://localhost:8443",
        VOUCH_TRUSTED_PROXIES=[],
        VOUCH_TLS_CERT="",
        VOUCH_TLS_KEY="",
        SMTP_URL="",
    )
    for code in ("vouch.E001", "vouch.E002", "vouch.E003", "vouch.E004", "vouch.E007", "vouch.E008"):
        assert code in errors


@pytest.fixture
def keep_umask():
    # vouch.cli.main sets a 077 umask for the process; give the rest of the run its own back.
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def test_the_cli_check_refuses_too(good, capsys, keep_umask):
    from vouch.cli import main

    with override_settings(**{**good, "DEBUG": True}):
        assert main(["check", "--deploy"]) == 1
    assert "vouch.E001" in capsys.readouterr().err
    with override_settings(**good):
        assert main(["check", "--deploy"]) == 0
