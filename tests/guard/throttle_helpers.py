"""Helpers for the brute-force tests: sign-in attempts from chosen addresses, a clock
the throttle reads, and a count of password hashes actually computed."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import PASSWORD, HTTPSClient

WRONG = "not the password, but long enough"
THROTTLED = "Too many sign-in attempts"
DISABLED = "signing in with this password is turned off"


def attempt(email: str, password: str = WRONG, ip: str = "203.0.113.1", client: HTTPSClient | None = None):
    client = client or HTTPSClient()
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(client: HTTPSClient) -> bool:
    return "_auth_user_id" in client.session


def text(response) -> str:
    return response.content.decode()


class Clock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock(monkeypatch):
    import time

    from vouch.guard import throttle

    fake = Clock(time.time())
    monkeypatch.setattr(throttle, "now", fake)
    return fake


@pytest.fixture
def hash_calls(monkeypatch):
    """Counts Argon2 verify/encode calls (the real and the dummy check) while doing the real work."""
    from vouch.accounts.hashers import VouchArgon2PasswordHasher

    calls: Counter = Counter()
    for name in ("verify", "encode"):
        original = getattr(VouchArgon2PasswordHasher, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(VouchArgon2PasswordHasher, name, counting)
    return calls


__all__ = ["PASSWORD", "WRONG", "THROTTLED", "DISABLED", "attempt", "signed_in", "text", "clock", "hash_calls"]
