"""Slow clients against the real server (P3): slowloris (many connections trickling their
headers, or never starting TLS) and slow bodies do not hold the server's threads; a
normal client is still answered quickly. The figures are printed (run with -s).

The server believes X-Forwarded-For from 127.0.0.1 here (VOUCH_TRUSTED_PROXIES), so one
machine can play an attacker's address and a normal client's."""

from __future__ import annotations

import contextlib
import re
import socket
import statistics
import threading
import time

import pytest

from tests.server import helpers
from tests.server.helpers import request, tls_context
from vouch.cli.serve import HEADER_READ_TIMEOUT_MS

pytestmark = pytest.mark.server

SLOW_CONNECTIONS = 200
NORMAL = "198.51.100.7"
ATTACKER = "203.0.113.9"
METRICS_TOKEN = "limits-" + "Zq7Lm2Rx9Tw4Kp8V" * 2


@pytest.fixture(scope="module")
def server():
    from tests.live import cleanup, make_server

    server = make_server(extra_env={"VOUCH_TRUSTED_PROXIES": "127.0.0.1", "VOUCH_METRICS_TOKEN": METRICS_TOKEN}).start()
    yield server
    cleanup(server)


def _timed(server, path: str = "/accounts/login/", address: str = NORMAL) -> tuple[int, float]:
    started = time.perf_counter()
    response = request(server, "GET", path, headers={"X-Forwarded-For": address}, timeout=30)
    return response.status, time.perf_counter() - started


def _normal_client(server, count: int = 20) -> list[float]:
    seconds = []
    for _ in range(count):
        status, taken = _timed(server)
        assert status == 200
        seconds.append(taken)
    return seconds


def _summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return f"median {statistics.median(ordered) * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def _tls(server, timeout: float = 10) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", server.https_port), timeout=timeout)
    return tls_context(server).wrap_socket(raw, server_hostname="localhost")


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed (or answered and closed) the connection."""
    sock.settimeout(0.2)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 4")


def test_slowloris_headers_do_not_slow_a_normal_client(server):
    baseline = _normal_client(server)
    slow: list[socket.socket] = []
    idle: list[socket.socket] = []
    stop = threading.Event()
    try:
        started = time.monotonic()
        for n in range(SLOW_CONNECTIONS):
            if n % 4 == 0:
                # Never even starting TLS: a connection that only holds a socket.
                idle.append(socket.create_connection(("127.0.0.1", server.https_port), timeout=10))
                continue
            sock = _tls(server)
            sock.sendall(f"GET / HTTP/1.1\r\nHost: localhost:{server.https_port}\r\n".encode())
            slow.append(sock)

        def trickle():
            n = 0
            while not stop.wait(1):
                n += 1
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(f"X-Slow-{n}: a\r\n".encode())

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        opened = time.monotonic() - started
        attacked = _normal_client(server)
        # The header read timeout ends the trickling ones: nothing holds them open forever.
        time.sleep(max(0.0, HEADER_READ_TIMEOUT_MS / 1000 + 2 - (time.monotonic() - started)))
        stop.set()
        trickler.join(5)
        closed = sum(_closed_by_server(sock) for sock in slow)
        idle_closed = sum(_closed_by_server(sock) for sock in idle)
    finally:
        stop.set()
        for sock in slow + idle:
            with contextlib.suppress(OSError):
                sock.close()
    print(
        f"\nslowloris: {len(slow)} TLS connections trickling headers + {len(idle)} idle TCP connections "
        f"(opened in {opened:.1f} s)\n  normal client before: {_summary(baseline)}\n"
        f"  normal client during: {_summary(attacked)}\n"
        f"  trickling connections closed by the server after {HEADER_READ_TIMEOUT_MS / 1000:.0f} s: "
        f"{closed}/{len(slow)}; idle TCP connections closed by then: {idle_closed}/{len(idle)}"
    )
    assert statistics.median(attacked) < max(0.25, 3 * statistics.median(baseline))
    assert max(attacked) < 2
    assert closed == len(slow)


@contextlib.contextmanager
def _slow_sign_in_posts(server, addresses: list[str]):
    """One sign-in post per address in ``addresses``, each sending its 100,000-byte body
    4 bytes a second (a valid CSRF cookie and origin: Django reads the body to find the
    form's token). Yields the sockets; they are closed after."""
    csrf, _, _ = helpers.csrf_form(server, "/accounts/login/")
    sockets: list[socket.socket] = []
    stop = threading.Event()
    try:
        for address in addresses:
            sock = _tls(server)
            sock.sendall(
                (
                    f"POST /accounts/login/ HTTP/1.1\r\nHost: localhost:{server.https_port}\r\n"
                    f"Origin: {server.url}\r\nReferer: {server.url}/accounts/login/\r\n"
                    f"Cookie: __Host-csrftoken={csrf}\r\nX-Forwarded-For: {address}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nlogin="
                ).encode()
            )
            sockets.append(sock)

        def trickle():
            while not stop.wait(1):
                for sock in sockets:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"aaaa")

        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(1)
        yield sockets
    finally:
        stop.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _answered_429(sockets: list[socket.socket]) -> int:
    """How many of the slow posts were answered 429 at once."""
    refused = 0
    for sock in sockets:
        sock.settimeout(0.5)
        with contextlib.suppress(OSError):
            if sock.recv(4096).startswith(b"HTTP/1.1 429"):
                refused += 1
    return refused


def test_slow_bodies_from_one_address_hold_at_most_its_share_of_threads(server):
    """Sixteen uploads that send their body a few bytes a second, from one address: it
    holds at most VOUCH_CLIENT_IN_FLIGHT (threads - 2) threads; its other requests are
    answered 429 at once, and a normal client is answered quickly."""
    baseline = _normal_client(server, 10)
    with _slow_sign_in_posts(server, [ATTACKER] * 16) as sockets:
        attacked = _normal_client(server, 10)
        refused = _answered_429(sockets)
    print(
        f"\nslow bodies: 16 uploads trickling 4 bytes/s from one address: {refused} answered 429 at once\n"
        f"  normal client before: {_summary(baseline)}\n  normal client during: {_summary(attacked)}"
    )
    assert refused >= 16 - 3
    assert max(attacked) < 2


def test_headers_over_64_kib_are_refused_by_the_server(server):
    """A 100 KiB header never reaches Django: granian refuses it (431) or drops the connection."""
    with _tls(server) as sock:
        received = b""
        # The server may refuse and close before the whole header is sent: that is fine.
        with contextlib.suppress(OSError):
            sock.sendall(
                f"GET /livez HTTP/1.1\r\nHost: localhost:{server.https_port}\r\nX-Big: {'a' * 100_000}\r\n\r\n".encode()
            )
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received:
                    break
    status_line = received.split(b"\r\n", 1)[0].decode()
    print(f"\n100 KiB header: {status_line or 'connection closed'}")
    assert received == b"" or received.startswith(b"HTTP/1.1 431")
    assert _timed(server, "/livez")[0] == 200


def test_slow_bodies_from_many_addresses_leave_a_thread_for_a_member(server):
    """Eight slow sign-in posts from eight addresses, none signed in: together they hold at
    most VOUCH_ANONYMOUS_IN_FLIGHT (threads - 1) threads, the others are answered 429 at
    once, and a signed-in member's dashboard is still answered (without the cap the slow
    posts would hold every thread, and it would wait past its timeout)."""
    email = "member-beside-slow-bodies@example.com"
    helpers.create_member(server, email, "Beside Slow Bodies Co")
    session = helpers.session_cookie(server, email)
    with _slow_sign_in_posts(server, [f"203.0.113.{n + 20}" for n in range(8)]) as sockets:
        started = time.perf_counter()
        page = request(
            server,
            "GET",
            "/dashboard/",
            headers={"X-Forwarded-For": NORMAL},
            cookies={"__Host-vouch_session": session},
            timeout=30,
        )
        member_seconds = time.perf_counter() - started
        refused = _answered_429(sockets)
    print(
        f"\nslow bodies from 8 addresses: {refused} answered 429 at once; "
        f"a member's dashboard beside them in {member_seconds * 1000:.0f} ms"
    )
    assert page.status == 200
    assert refused >= 8 - 3


def _accounts_at_low_priority(server) -> float:
    """Requests of accounts without standing run at low priority so far (the operators' metric)."""
    scraped = request(server, "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status == 200
    found = re.findall(r'^vouch_low_priority_requests_total\{ran="\w+",who="account"\} (\S+)$', scraped.text, re.M)
    return sum(float(value) for value in found)


def test_a_flooding_account_runs_at_low_priority_and_a_member_at_a_persons_pace_does_not(server):
    """A member loading pages one at a time is never gated; an account sending eight at
    once is refused past its cap (VOUCH_ACCOUNT_IN_FLIGHT) and, for ten seconds, what it
    is still allowed runs at low priority (vouch.shield.priority)."""
    helpers.create_member(server, "member-at-a-pace@example.com", "At A Pace Co")
    helpers.create_member(server, "flooding-member@example.com", "Flooding Co")
    member = {"__Host-vouch_session": helpers.session_cookie(server, "member-at-a-pace@example.com")}
    flooder = {"__Host-vouch_session": helpers.session_cookie(server, "flooding-member@example.com")}

    def dashboard(cookies: dict[str, str], address: str) -> int:
        page = request(server, "GET", "/dashboard/", headers={"X-Forwarded-For": address}, cookies=cookies, timeout=30)
        return page.status

    def at_a_pace(count: int) -> list[int]:
        statuses = []
        for _ in range(count):
            statuses.append(dashboard(member, NORMAL))
            time.sleep(0.05)
        return statuses

    before = _accounts_at_low_priority(server)
    assert at_a_pace(10) == [200] * 10
    assert _accounts_at_low_priority(server) == before

    statuses: list[int] = []
    for _ in range(3):
        flood = [
            threading.Thread(target=lambda n=n: statuses.append(dashboard(flooder, f"203.0.113.{n + 40}")))
            for n in range(8)
        ]
        for thread in flood:
            thread.start()
        for thread in flood:
            thread.join(60)
    gated = _accounts_at_low_priority(server) - before
    print(f"\nan account sending 8 at once, 3 times: {statuses.count(429)} refused, {gated:.0f} at low priority")
    assert statuses.count(429) > 0 and statuses.count(200) > 0
    assert gated > 0

    # The member's standing is their own: still not gated, never refused.
    during = _accounts_at_low_priority(server)
    assert at_a_pace(5) == [200] * 5
    assert _accounts_at_low_priority(server) == during
