"""Request-size limits of the real server (P3): too-large bodies get 413 before they are read, never a 500."""

from __future__ import annotations

import contextlib
import socket
import time
from urllib.parse import urlencode

import pytest

from tests.server import helpers
from tests.server.helpers import request, tls_context

pytestmark = pytest.mark.server

SMALL_CAP = 10_000
DEFAULT_CAP = 2_621_440


@pytest.fixture(scope="module")
def small_cap_server():
    from tests.live import cleanup, make_server

    server = make_server(extra_env={"VOUCH_MAX_BODY_BYTES": str(SMALL_CAP)}).start()
    yield server
    cleanup(server)


def _post(server, size: int) -> int:
    """POST a login form padded to exactly ``size`` bytes (all of it sent); return the status."""
    csrf, token, _ = helpers.csrf_form(server, "/accounts/login/")
    fields = {"csrfmiddlewaretoken": token, "login": "nobody@example.com", "password": "x"}
    body = urlencode(fields).encode() + b"&pad="
    body += b"a" * (size - len(body))
    assert len(body) == size
    head = (
        f"POST /accounts/login/ HTTP/1.1\r\nHost: localhost:{server.https_port}\r\n"
        f"Referer: {server.url}/accounts/login/\r\nCookie: __Host-csrftoken={csrf}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    received, _ = _raw_exchange(server, head, [body])
    return _status(received)


def _status(received: bytes) -> int:
    assert received.startswith(b"HTTP/1.1 "), received[:200]
    return int(received.split(b" ", 2)[1])


def _no_server_errors(server) -> None:
    log = server.log()
    assert '"status": 500' not in log
    assert "Internal Server Error" not in log


def _raw_exchange(server, head: bytes, body_parts=(), read_timeout: float = 10) -> tuple[bytes, float]:
    """Send ``head`` and then ``body_parts`` over TLS; return the response head and seconds taken."""
    context = tls_context(server)
    started = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", server.https_port), timeout=read_timeout) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(head)
        # The server may answer and close before the whole body is sent: that is fine.
        with contextlib.suppress(OSError):
            for part in body_parts:
                tls.sendall(part)
        received = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in received and (chunk := tls.recv(65536)):
                received += chunk
    return received, time.monotonic() - started


def test_a_body_over_the_cap_gets_413(small_cap_server):
    assert _post(small_cap_server, SMALL_CAP + 1) == 413
    _no_server_errors(small_cap_server)


def test_a_body_at_the_cap_is_read(small_cap_server):
    # Read in full (the CSRF token is in it) and refused only for its wrong credentials.
    assert _post(small_cap_server, SMALL_CAP) == 200
    _no_server_errors(small_cap_server)


def test_a_huge_declared_length_is_refused_before_the_body_is_sent(small_cap_server):
    head = (
        f"POST /accounts/login/ HTTP/1.1\r\nHost: localhost:{small_cap_server.https_port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 50000000\r\n\r\n"
    ).encode()
    received, seconds = _raw_exchange(small_cap_server, head)  # not one byte of the body is sent
    assert received.startswith(b"HTTP/1.1 413 ")
    assert seconds < 5


def test_too_many_form_fields_get_413(small_cap_server):
    csrf, token, _ = helpers.csrf_form(small_cap_server, "/accounts/login/")
    fields = [("csrfmiddlewaretoken", token)] + [(f"f{i}", "") for i in range(1100)]
    body = urlencode(fields).encode()
    assert len(body) < SMALL_CAP
    response = request(
        small_cap_server,
        "POST",
        "/accounts/login/",
        body=body,
        cookies={"__Host-csrftoken": csrf},
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"{small_cap_server.url}/accounts/login/",
        },
    )
    assert response.status == 413
    _no_server_errors(small_cap_server)


def test_a_chunked_body_over_the_cap_is_not_buffered_and_not_a_500(small_cap_server):
    head = (
        f"POST /accounts/login/ HTTP/1.1\r\nHost: localhost:{small_cap_server.https_port}\r\n"
        f"Referer: {small_cap_server.url}/accounts/login/\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"a" * SMALL_CAP * 2
    # Only part of the body is sent and it is never terminated: an answer proves nothing waits for it.
    received, _ = _raw_exchange(small_cap_server, head, [b"%x\r\n" % len(chunk) + chunk + b"\r\n"])
    assert 400 <= _status(received) < 500
    assert request(small_cap_server, "GET", "/livez").status == 200
    _no_server_errors(small_cap_server)


@pytest.mark.parametrize("value", ["abc", "-5", "1e3", "10, 10"])
def test_a_malformed_content_length_gets_400(small_cap_server, value):
    head = (
        f"POST /accounts/login/ HTTP/1.1\r\nHost: localhost:{small_cap_server.https_port}\r\n"
        f"Content-Length: {value}\r\nConnection: close\r\n\r\n"
    ).encode()
    received, _ = _raw_exchange(small_cap_server, head)
    assert received.startswith(b"HTTP/1.1 400 ")
    _no_server_errors(small_cap_server)


def test_the_default_cap_is_2_5_mib(live_vouch):
    assert _post(live_vouch, DEFAULT_CAP + 1) == 413
    assert _post(live_vouch, DEFAULT_CAP) == 200
