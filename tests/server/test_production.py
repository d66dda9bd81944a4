"""`vouch serve` in production mode refuses insecure settings and serves with good ones."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time

import pytest

from tests.live import VOUCH, cleanup, make_server
from tests.server.helpers import request, tls_context
from vouch.web.tls import ensure_dev_certificate

pytestmark = pytest.mark.server


@pytest.fixture
def production_server(tmp_path):
    """A server prepared (not started) with a good production configuration."""
    cert, key = ensure_dev_certificate(tmp_path / "real-tls")
    server = make_server(
        extra_env={
            "VOUCH_MODE": "production",
            "VOUCH_SECRET_KEY": secrets.token_hex(40),  # hex cannot spell a "weak" marker word
            "VOUCH_ALLOWED_HOSTS": "localhost",
            "VOUCH_TLS_CERT": str(cert),
            "VOUCH_TLS_KEY": str(key),
            # Checked at start-up, not reached: nothing here sends mail.
            "VOUCH_SMTP_URL": "smtps://vouch:secret@relay.example.com:465",
        }
    )
    server.production_cert = cert
    yield server
    cleanup(server)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _variables_named(text: str) -> set[str]:
    names = {
        "VOUCH_SECRET_KEY",
        "VOUCH_DEBUG",
        "VOUCH_ALLOWED_HOSTS",
        "VOUCH_PUBLIC_URL",
        "VOUCH_TLS_CERT",
        "VOUCH_SMTP_URL",
        "VOUCH_DATABASE_URL",
        "VOUCH_COMPANY_DATABASE_URL",
        "VOUCH_REGION_EU_DATABASE_URL",
        "VOUCH_REDIS_URL",
    }
    return {name for name in names if name in text}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param({"VOUCH_SECRET_KEY": ""}, "VOUCH_SECRET_KEY", id="no-secret-key"),
        pytest.param({"VOUCH_SECRET_KEY": "change-me-" * 6}, "VOUCH_SECRET_KEY", id="weak-secret-key"),
        pytest.param({"VOUCH_SECRET_KEY": "ab" * 30}, "VOUCH_SECRET_KEY", id="low-variety-secret-key"),
        pytest.param({"VOUCH_DEBUG": "1"}, "VOUCH_DEBUG", id="debug-on"),
        pytest.param({"VOUCH_ALLOWED_HOSTS": "*"}, "VOUCH_ALLOWED_HOSTS", id="any-host"),
        pytest.param({"VOUCH_PUBLIC_URL": "http://localhost"}, "VOUCH_PUBLIC_URL", id="http-public-url"),
        pytest.param({"VOUCH_TLS_CERT": "/nonexistent/cert.pem"}, "VOUCH_TLS_CERT", id="missing-certificate"),
        pytest.param({"VOUCH_SMTP_URL": ""}, "VOUCH_SMTP_URL", id="no-mail-relay"),
        # Named only, never reached: the checks refuse before anything connects to them.
        pytest.param(
            {"VOUCH_COMPANY_DATABASE_URL": "postgres://vouch@db.example.com/postgres?sslmode=require"},
            "VOUCH_COMPANY_DATABASE_URL",
            id="company-database-without-verified-tls",
        ),
        pytest.param(
            {"VOUCH_REGION_EU_DATABASE_URL": "postgres://vouch@10.0.0.5/postgres"},
            "VOUCH_REGION_EU_DATABASE_URL",
            id="region-database-without-tls",
        ),
        pytest.param(
            {"VOUCH_REDIS_URL": "redis://redis.example.com:6379/0", "VOUCH_TASKS_BACKEND": "database"},
            "VOUCH_REDIS_URL",
            id="redis-without-tls",
        ),
    ],
)
def test_insecure_production_settings_refuse_to_start(production_server, change, named):
    env = {**production_server.env, **change}
    if not env.get("VOUCH_SECRET_KEY"):
        env.pop("VOUCH_SECRET_KEY", None)
    # Own process group: if it does start, it and every granian process it made can be stopped.
    process = subprocess.Popen(
        [str(VOUCH), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    listened = False
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if _listening(production_server.https_port) or _listening(production_server.http_port):
                listened = True
                break
            time.sleep(0.1)
        exited_by_itself = process.poll() is not None
    finally:
        if process.poll() is None:  # started after all (or hung): stop it and its servers
            _signal_group(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        _signal_group(process, signal.SIGKILL)  # nothing of it may outlive the test
        _, stderr = process.communicate(timeout=30)
    assert not listened, f"vouch serve listened with {change}"
    assert exited_by_itself, "vouch serve neither refused nor listened within 30 s"
    assert process.returncode != 0
    assert "refuses to start" in stderr
    # Exactly the problem introduced is named: the rest of the configuration is good.
    assert _variables_named(stderr) == {named}, stderr
    assert not (production_server.data_dir / "tls" / "cert.pem").exists()


def test_a_good_production_configuration_serves(production_server):
    server = production_server.start()
    response = request(server, "GET", "/healthz", cafile=server.production_cert)
    assert response.status == 200, server.log()
    assert response.header("Strict-Transport-Security")
    # The configured certificate is the one served, and no development one was made.
    assert not server.cert_path.exists()
    context = tls_context(server, cafile=server.production_cert)
    with (
        socket.create_connection(("127.0.0.1", server.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.getpeercert(binary_form=True) == _der(server.production_cert)
    # Only the allowed host is answered.
    wrong_host = request(server, "GET", "/livez", headers={"Host": "127.0.0.1"}, cafile=server.production_cert)
    assert wrong_host.status == 400


def _der(path) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(path.read_text())
