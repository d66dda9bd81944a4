"""The sample nginx configuration (docs/security/nginx-vouch.conf), run as written in front
of a real `vouch serve`: requests pass with the client's address forwarded (and a
client's own X-Forwarded-For ignored), an oversized header is refused by nginx, and slow
uploads wait on nginx, not on Vouch's threads. Skipped where nginx is not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.server.helpers import tls_context
from vouch.shield.limits import WINDOW

pytestmark = pytest.mark.server

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "security" / "nginx-vouch.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ADDRESS_LIMIT = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def vouch():
    from tests.live import cleanup, make_server

    server = make_server(
        extra_env={"VOUCH_TRUSTED_PROXIES": "127.0.0.1", "VOUCH_RATE_LIMITS": f"sign_in.address={ADDRESS_LIMIT}"}
    ).start()
    yield server
    cleanup(server)


def configuration(vouch, directory: Path, port: int) -> str:
    """The sample with this test's ports and files; every replaced line must be there."""
    text = SAMPLE.read_text()
    replacements = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
        "listen [::]:443 ssl http2;": f"listen [::1]:{port} ssl http2;",
        "server 127.0.0.1:8443;": f"server 127.0.0.1:{vouch.https_port};",
        "/etc/ssl/vouch/fullchain.pem": str(vouch.cert_path),
        "/etc/ssl/vouch/privkey.pem": str(vouch.cert_path.with_name("key.pem")),
        "/var/lib/vouch/tls/cert.pem": str(vouch.cert_path),
    }
    for old, new in replacements.items():
        assert old in text, f"the sample no longer has {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def nginx(vouch):
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    directory = Path(tempfile.mkdtemp(prefix="vouch-nginx-"))
    directory.chmod(0o755)  # nginx's workers (nobody, when the test runs as root) write temp files here
    port = _free_port()
    (directory / "vouch.conf").write_text(configuration(vouch, directory, port))
    user = "user nobody nogroup;\n" if os.getuid() == 0 else ""
    temp_paths = "".join(f"{kind}_temp_path {directory / kind};\n" for kind in ("client_body", "proxy", "fastcgi"))
    temp_paths += "".join(f"{kind}_temp_path {directory / kind};\n" for kind in ("uwsgi", "scgi"))
    (directory / "nginx.conf").write_text(
        f"{user}worker_processes 1;\nerror_log {directory / 'error.log'} warn;\npid {directory / 'nginx.pid'};\n"
        "events { worker_connections 1024; }\n"
        f"http {{\naccess_log {directory / 'access.log'};\n{temp_paths}include {directory / 'vouch.conf'};\n}}\n"
    )
    command = [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(10)
    shutil.rmtree(directory, ignore_errors=True)


def _get(vouch, host: str, port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET over TLS to nginx at ``host`` (127.0.0.1 or ::1): the status and the body's start."""
    lines = [f"GET {path} HTTP/1.1", f"Host: localhost:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with (
        socket.create_connection((host, port), timeout=20) as raw,
        tls_context(vouch).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        with contextlib.suppress(OSError):
            while chunk := tls.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _within_one_window(margin: float = 15.0) -> None:
    """Vouch counts in fixed one-minute windows (vouch.shield.limits): requests that cross
    a minute are counted in two. When this minute has less than ``margin`` seconds left,
    wait for the next, so that the test's few requests fall in one window (in CI the
    fourth request once landed in a new minute and was let through)."""
    left = WINDOW - time.time() % WINDOW
    if left < margin:
        time.sleep(left + 0.05)


def test_requests_pass_with_the_client_address_forwarded(vouch, nginx):
    # Vouch counts the sign-in pages per client address: over IPv6 loopback the client is
    # ::1, over IPv4 127.0.0.1 (nginx's own address would make them one).
    _within_one_window()
    for _ in range(ADDRESS_LIMIT):
        status, _ = _get(vouch, "::1", nginx, "/accounts/login/")
        assert status == 200
    status, body = _get(vouch, "::1", nginx, "/accounts/login/")
    assert status == 429 and b"Too many requests" in body  # Vouch's page, for ::1 only
    # A client's own X-Forwarded-For is replaced by nginx: it cannot claim another address.
    status, _ = _get(vouch, "::1", nginx, "/accounts/login/", {"X-Forwarded-For": "192.0.2.1"})
    assert status == 429
    status, _ = _get(vouch, "127.0.0.1", nginx, "/accounts/login/")
    assert status == 200


def _logged_requests(vouch) -> int:
    return vouch.log().count('"event": "request"')


def _wait_for_logged(vouch, count: int) -> int:
    """The server's count of logged requests once it reaches ``count`` (its log is written
    as requests end): what it is after 10 s otherwise."""
    deadline = time.monotonic() + 10
    while (found := _logged_requests(vouch)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_an_oversized_header_is_refused_by_nginx(vouch, nginx):
    # A request of this test's own first: the count below does not lean on other tests.
    before = _logged_requests(vouch)
    assert _get(vouch, "127.0.0.1", nginx, "/livez")[0] == 200
    before = _wait_for_logged(vouch, before + 1)
    status, body = _get(vouch, "127.0.0.1", nginx, "/livez", {"X-Padding": "a" * 16_384})
    assert status == 400
    assert b"Request Header Or Cookie Too Large" in body
    # One more good request is logged next; had the oversized one reached Vouch, two would be.
    assert _get(vouch, "127.0.0.1", nginx, "/livez")[0] == 200
    assert _wait_for_logged(vouch, before + 1) == before + 1
    assert _logged_requests(vouch) == before + 1


def test_slow_uploads_wait_on_nginx_not_on_vouchs_threads(vouch, nginx):
    """Twelve uploads trickling their bodies (more than Vouch's threads) through nginx:
    nginx reads each whole body before passing it on, so Vouch keeps answering."""
    sockets = []
    stop = threading.Event()
    try:
        for _ in range(12):
            raw = socket.create_connection(("127.0.0.1", nginx), timeout=10)
            tls = tls_context(vouch).wrap_socket(raw, server_hostname="localhost")
            tls.sendall(
                (
                    f"POST /accounts/login/ HTTP/1.1\r\nHost: localhost:{nginx}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nlogin="
                ).encode()
            )
            sockets.append(tls)

        def trickle():
            while not stop.wait(1):
                for sock in sockets:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"aaaa")

        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(1)
        seconds = []
        for _ in range(10):
            started = time.perf_counter()
            assert _get(vouch, "127.0.0.1", nginx, "/livez")[0] == 200
            seconds.append(time.perf_counter() - started)
    finally:
        stop.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
    print(f"\nthrough nginx, 12 slow uploads: a normal request took at most {max(seconds) * 1000:.1f} ms")
    assert max(seconds) < 2
