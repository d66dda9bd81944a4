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


# --- Database and Redis connections: verified TLS unless they stay on this machine ------

REMOTE_DB = "postgres://vouch:pw@db.example.com:5432/vouch"
REMOTE_REDIS = "redis://:pw@redis.example.com:6379/0"


def _regions(**urls: str) -> dict:
    """VOUCH_REGIONS/VOUCH_REGION_CONFIG as settings build them from these variables."""
    company = urls.pop("VOUCH_COMPANY_DATABASE_URL", "")
    config = {}
    for name in ("au", "eu"):
        own = urls.get(f"VOUCH_REGION_{name.upper()}_DATABASE_URL", "")
        config[name] = {
            "database_url": own or company,
            "database_url_variable": f"VOUCH_REGION_{name.upper()}_DATABASE_URL"
            if own
            else "VOUCH_COMPANY_DATABASE_URL",
            "dir": "/nonexistent",
        }
    return {"VOUCH_REGIONS": ["au", "eu"], "VOUCH_REGION_CONFIG": config}


def _transport(variable: str, url: str) -> dict:
    if variable == "VOUCH_DATABASE_URL":
        return {"VOUCH_DATABASE_URL": url}
    if variable == "VOUCH_REDIS_URL":
        return {"REDIS_URL": url}
    return _regions(**{variable: url})


TRANSPORT_VARIABLES = [
    "VOUCH_DATABASE_URL",
    "VOUCH_COMPANY_DATABASE_URL",
    "VOUCH_REGION_EU_DATABASE_URL",
]

REFUSED_DATABASE_URLS = [
    REMOTE_DB,
    REMOTE_DB + "?sslmode=require",  # encrypted, but any certificate passes
    REMOTE_DB + "?sslmode=prefer",
    REMOTE_DB + "?sslmode=disable",
    "postgres://vouch@10.0.0.5/vouch",
    "postgres://vouch@[2001:db8::5]/vouch",
    "postgres://vouch@127.0.0.1,db.example.com/vouch",  # one of the hosts is remote
    "postgres://vouch@localhost/vouch?hostaddr=10.0.0.5",  # libpq connects to hostaddr
    "postgres:///vouch?host=db.example.com",
]
ACCEPTED_DATABASE_URLS = [
    REMOTE_DB + "?sslmode=verify-full",
    REMOTE_DB + "?sslmode=verify-ca&sslrootcert=/etc/vouch/ca.pem",
    "postgres://vouch@127.0.0.1:5432/vouch",
    "postgres://vouch@127.8.0.1/vouch",
    "postgres://vouch@localhost/vouch",
    "postgres://vouch@[::1]:5432/vouch",
    "postgres:///vouch?host=/var/run/postgresql",
    "postgres:///vouch",  # no host: libpq's default Unix socket
]


@pytest.mark.parametrize("variable", TRANSPORT_VARIABLES)
@pytest.mark.parametrize("url", REFUSED_DATABASE_URLS)
def test_a_database_reached_over_the_network_without_verified_tls_is_refused(good, variable, url):
    errors = deploy_check_errors(**{**good, **_transport(variable, url)})
    assert "vouch.E019" in errors
    assert f"{variable} must use TLS" in errors
    assert errors.count("vouch.E019") == 1, errors


@pytest.mark.parametrize("variable", TRANSPORT_VARIABLES)
@pytest.mark.parametrize("url", ACCEPTED_DATABASE_URLS)
def test_a_database_with_verified_tls_or_on_this_machine_is_accepted(good, variable, url):
    assert deploy_check_errors(**{**good, **_transport(variable, url)}) == ""


def test_every_region_database_is_named(good):
    overrides = _regions(
        VOUCH_REGION_AU_DATABASE_URL=REMOTE_DB, VOUCH_REGION_EU_DATABASE_URL=REMOTE_DB + "?sslmode=require"
    )
    errors = deploy_check_errors(**{**good, **overrides})
    assert "VOUCH_REGION_AU_DATABASE_URL must use TLS" in errors
    assert "VOUCH_REGION_EU_DATABASE_URL must use TLS" in errors


def test_a_shared_company_server_is_named_once(good):
    errors = deploy_check_errors(**{**good, **_regions(VOUCH_COMPANY_DATABASE_URL=REMOTE_DB)})
    assert errors.count("VOUCH_COMPANY_DATABASE_URL must use TLS") == 1


@pytest.mark.parametrize(
    "url",
    [
        REMOTE_REDIS,
        "redis://10.0.0.7:6379/0",
        "rediss://redis.example.com:6380/0?ssl_cert_reqs=none",  # TLS, certificate unchecked
        "rediss://redis.example.com:6380/0?ssl_cert_reqs=optional",
        "rediss://redis.example.com:6380/0?ssl_check_hostname=false",
    ],
)
def test_redis_over_the_network_without_tls_is_refused(good, url):
    errors = deploy_check_errors(**{**good, "REDIS_URL": url})
    assert "VOUCH_REDIS_URL must use TLS" in errors
    assert "vouch.E019" in errors


@pytest.mark.parametrize(
    "url",
    [
        "rediss://:pw@redis.example.com:6380/0",
        "redis://127.0.0.1:6379/0",
        "redis://localhost:6379/0",
        "redis://[::1]:6379/0",
        "unix:///run/redis/redis.sock?db=0",
    ],
)
def test_redis_over_tls_or_on_this_machine_is_accepted(good, url):
    assert deploy_check_errors(**{**good, "REDIS_URL": url}) == ""


def test_connections_are_not_judged_outside_production(good):
    overrides = {
        **_regions(VOUCH_COMPANY_DATABASE_URL=REMOTE_DB),
        "VOUCH_DATABASE_URL": REMOTE_DB,
        "REDIS_URL": REMOTE_REDIS,
    }
    assert "vouch.E019" not in deploy_check_errors(**{**good, **overrides, "PRODUCTION": False})
