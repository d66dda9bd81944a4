"""A flood of token-less POSTs from one address beside another person's sign-ins, against a
real running server: driven by tests/audit/test_event_flood.py (what the flood leaves in
the chained log) and by `make bench` (bench/event_flood.py: what it costs the sign-ins)."""

from __future__ import annotations

import itertools
import multiprocessing
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tests.server import helpers
from tests.server.helpers import Connection

FLOOD = 10_000
FLOODER = "192.0.2.66"  # one address, through the trusted proxy
PERSON = "198.51.100.1"  # the other person's own address
ROUND = 8  # sign-ins per round
# The flooding client shares this machine's 2 cores with the server: unpaced, it
# measures its own CPU use as much as Vouch. 250 a second is a flood (every one of them
# an append to the chained log before sampling) and takes 40 s.
PER_SECOND = 250
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')

# The flood's address would be blocked by intrusion detection after about ten requests,
# and both clients' would meet the per-address request limits (vouch.shield): what is
# measured is the log's sampling under a sustained flood, and sign-in beside it.
SERVER_ENV = {
    "VOUCH_TRUSTED_PROXIES": "127.0.0.1",
    "VOUCH_SHIELD_ALLOW": FLOODER,
    "VOUCH_RATE_LIMIT_EXEMPT": f"{FLOODER},{PERSON}",
}


@dataclass
class FloodRun:
    sent: int = 0
    not_refused: int = 0  # answers other than the CSRF 403
    elapsed: float = 0.0
    unloaded: list[float] = field(default_factory=list)  # sign-in POSTs, ms
    loaded: list[float] = field(default_factory=list)


def sign_in_latencies(live, email: str, count: int, device: dict[str, str]) -> list[float]:
    """``count`` sign-ins of ``email`` from the person's own browser (``device`` keeps its
    device cookie, so the risk engine knows it, as it would); the time of the
    credentials' POST alone (the form's GET comes before the clock starts). Each one must
    succeed: a flood that locked the person out fails here."""
    connection = Connection(live)
    times = []
    try:
        for n in range(count):
            status, headers, body = connection.request("GET", "/accounts/login/", {"X-Forwarded-For": PERSON})
            assert status == 200
            cookies = {
                value.split("=", 1)[0]: value.split(";")[0].split("=", 1)[1]
                for name, value in headers
                if name.lower() == "set-cookie"
            }
            cookies = {"__Host-csrftoken": cookies["__Host-csrftoken"], **device}
            token = _CSRF_INPUT.search(body.decode()).group(1)
            fields = urlencode({"csrfmiddlewaretoken": token, "login": email, "password": helpers.PASSWORD})
            started = time.perf_counter()
            status, headers, answer = connection.request(
                "POST",
                "/accounts/login/",
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                    "Referer": f"{live.url}/accounts/login/",
                    "Origin": live.url,
                    "X-Forwarded-For": PERSON,
                },
                fields.encode(),
            )
            times.append((time.perf_counter() - started) * 1000)
            location = next((value for name, value in headers if name.lower() == "location"), "")
            assert status == 302 and "verify" not in location, (n, status, location)
            for name, value in headers:
                if name.lower() == "set-cookie" and value.startswith("__Host-vouch_device="):
                    device["__Host-vouch_device"] = value.split(";")[0].split("=", 1)[1]
    finally:
        connection.close()
    return times


def _flood(live, running, sent, statuses) -> None:
    """The attacker process: one keep-alive connection, every POST without a CSRF token,
    all from one address; it holds while ``running`` is clear."""
    connection = Connection(live)
    body = urlencode({"login": "anyone@example.com", "password": "x"}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Referer": f"{live.url}/accounts/login/",
        "Origin": live.url,
        "X-Forwarded-For": FLOODER,
    }
    next_at = time.monotonic()
    try:
        for _ in itertools.repeat(None, FLOOD):
            if not running.is_set():
                running.wait()
                next_at = time.monotonic()
            next_at += 1 / PER_SECOND
            time.sleep(max(0.0, next_at - time.monotonic()))  # pacing the attacker, not waiting for a result
            status, _, _ = connection.request("POST", "/accounts/login/", headers, body)
            sent.value += 1
            if status != 403:
                statuses.value += 1
    finally:
        connection.close()


def flood_beside_sign_ins(live, email: str) -> FloodRun:
    """The whole flood, with ``email``'s sign-ins in alternating rounds: unloaded (the
    flood holds) and loaded (the flood under way again), so both see the same machine,
    whose cores are shared with other work whose load varies over minutes."""
    device: dict[str, str] = {}
    sign_in_latencies(live, email, 10, device)  # warm-up; the browser becomes known
    context = multiprocessing.get_context("fork")
    running = context.Event()
    sent, other = context.Value("i", 0), context.Value("i", 0)
    flood = context.Process(target=_flood, args=(live, running, sent, other), daemon=True)
    run = FloodRun()
    started = time.monotonic()
    flood.start()
    try:
        while flood.is_alive():
            running.clear()
            run.unloaded += sign_in_latencies(live, email, ROUND, device)
            running.set()
            mark = sent.value
            while sent.value < mark + 100 and flood.is_alive():  # the flood is under way again
                flood.join(0.02)
            run.loaded += sign_in_latencies(live, email, ROUND, device)
        flood.join(timeout=600)
    finally:
        if flood.is_alive():
            flood.kill()
    run.elapsed = time.monotonic() - started
    run.sent, run.not_refused = sent.value, other.value
    return run
