"""Helpers for the suspicious-login tests: client addresses from several countries
through the trusted proxy header, a clock the risk engine and the security log read,
and the emails a sign-in sends."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import override_settings

from tests.conftest import PASSWORD, HTTPSClient

# Real public addresses that geoip2fast's bundled data puts in these countries
# (checked by test_geo_knows_the_test_addresses, so a data update cannot silently
# turn a scenario into a different one).
GERMANY = "85.214.132.117"  # Strato AG
GERMANY_SAME_NETWORK = "85.214.140.1"
AUSTRALIA = "139.130.4.5"  # Telstra
FRANCE = "80.67.169.12"  # Gitoyen
NETHERLANDS = "193.0.6.139"  # RIPE NCC
GERMANY_V6 = "2a00:1450:4001:80b::200e"

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
PROXY = "127.0.0.1"  # the test client's socket address: the trusted proxy in these tests


class Clock:
    """Stands in for django.utils.timezone.now."""

    def __init__(self) -> None:
        self.now = dt.datetime(2030, 3, 4, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch):
    from django.utils import timezone

    fake = Clock()
    monkeypatch.setattr(timezone, "now", fake)
    return fake


@pytest.fixture(name="behind_proxy")
def behind_proxy_fixture():
    with override_settings(VOUCH_TRUSTED_PROXIES=[PROXY]):
        yield


def sign_in(client: HTTPSClient, email: str, ip: str, password: str = PASSWORD, agent: str = FIREFOX):
    return client.post(
        "/accounts/login/",
        {"login": email, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=ip,
        HTTP_USER_AGENT=agent,
    )


def get(client: HTTPSClient, path: str, ip: str, **extra):
    return client.get(path, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ip, HTTP_USER_AGENT=FIREFOX, **extra)


def post(client: HTTPSClient, path: str, data: dict, ip: str):
    return client.post(path, data, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ip, HTTP_USER_AGENT=FIREFOX)


def signed_in(client: HTTPSClient) -> bool:
    return "_auth_user_id" in client.session


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


def emails(kind_subject: str, to: str | None = None) -> list:
    return [m for m in mail.outbox if kind_subject in m.subject and (to is None or to in m.to)]


def html_of(message) -> str:
    (html, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return html


def code_from(message) -> str:
    match = re.search(r"^\s+(\d{6})\s*$", message.body, re.MULTILINE)
    assert match, message.body
    return match.group(1)


def link_from(message, pattern: str) -> str:
    match = re.search(r"https://\S+" + pattern + r"\S*", message.body)
    assert match, message.body
    return match.group(0).split("https://localhost:8443", 1)[-1]
