"""The real user is not locked out by an attacker (P13): a browser that has signed in
before (the signed device cookie) and the emailed unlock link both get them past the
throttles that an attacker's guesses set off, and nothing else does."""

from __future__ import annotations

import re

import pytest
from django.core import mail, signing
from django.utils import timezone

from tests.conftest import HTTPSClient, make_user
from tests.guard import throttle_helpers
from tests.guard.throttle_helpers import (
    PASSWORD,
    THROTTLED,
    attempt,
    text,
)
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import devices, unlock
from vouch.guard.models import AccountState, KnownDevice

pytestmark = pytest.mark.django_db
clock = throttle_helpers.clock  # fixtures
hash_calls = throttle_helpers.hash_calls


def flood(email: str, count: int = 12) -> None:
    for n in range(count):
        attempt(email, ip=f"203.0.113.{n + 1}")


def signed_in_browser(user, ip: str = "192.0.2.10") -> HTTPSClient:
    browser = HTTPSClient()
    assert attempt(user.email, PASSWORD, ip=ip, client=browser).status_code == 302
    assert devices.COOKIE_NAME in browser.cookies
    return browser


# -- the device cookie ------------------------------------------------------------------


def test_a_completed_sign_in_remembers_the_browser_with_a_host_cookie():
    user = make_user()
    browser = HTTPSClient()
    response = attempt(user.email, PASSWORD, client=browser)
    cookie = response.cookies[devices.COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/" and not cookie["domain"]
    assert cookie["samesite"] == "Lax"
    (device,) = KnownDevice.objects.filter(user=user)
    # Only a hash is stored, never the id in the cookie.
    assert signing.loads(cookie.value, salt="vouch.guard.device") not in device.device_hash
    assert len(device.device_hash) == 64


def test_a_known_device_gets_in_while_the_account_is_under_attack(hash_calls):
    user = make_user()
    browser = signed_in_browser(user)
    browser.post("/accounts/logout/")
    flood(user.email)
    assert THROTTLED in text(attempt(user.email, PASSWORD, ip="192.0.2.99"))  # a new browser waits
    response = attempt(user.email, PASSWORD, ip="192.0.2.10", client=browser)
    assert response.status_code == 302 and THROTTLED not in text(response)
    assert AccountState.objects.get(user=user).consecutive_failures == 0


def test_a_known_device_also_skips_the_address_throttle():
    user = make_user()
    browser = signed_in_browser(user, ip="192.0.2.20")
    browser.post("/accounts/logout/")
    # Someone else on the same address (an office NAT) guesses at many accounts.
    for n in range(12):
        attempt(f"victim{n}@example.org", ip="192.0.2.20")
    assert THROTTLED in text(attempt(make_user().email, PASSWORD, ip="192.0.2.20"))
    assert attempt(user.email, PASSWORD, ip="192.0.2.20", client=browser).status_code == 302


def test_a_known_device_has_its_own_growing_delays(clock):
    user = make_user()
    browser = signed_in_browser(user)
    browser.post("/accounts/logout/")
    for _ in range(5):
        assert THROTTLED not in text(attempt(user.email, client=browser))
    assert THROTTLED in text(attempt(user.email, PASSWORD, client=browser))
    clock.advance(16)
    assert attempt(user.email, PASSWORD, client=browser).status_code == 302


def test_a_forged_or_foreign_device_cookie_does_not_bypass():
    owner, other = make_user(), make_user()
    others_browser = signed_in_browser(other)
    others_browser.post("/accounts/logout/")
    flood(owner.email)
    # Another account's device is not this account's device.
    assert THROTTLED in text(attempt(owner.email, PASSWORD, client=others_browser))
    # An unsigned or re-signed cookie is no device at all.
    forged = HTTPSClient()
    forged.cookies[devices.COOKIE_NAME] = "made-up-value"
    assert THROTTLED in text(attempt(owner.email, PASSWORD, client=forged))
    forged.cookies[devices.COOKIE_NAME] = signing.dumps("x" * 43, salt="another.salt")
    assert THROTTLED in text(attempt(owner.email, PASSWORD, client=forged))


def test_a_known_device_does_not_beat_the_disabled_password():
    user = make_user()
    browser = signed_in_browser(user)
    browser.post("/accounts/logout/")
    AccountState.objects.filter(user=user).update(consecutive_failures=100)
    AccountState.objects.filter(user=user).update(password_disabled_at=timezone.now())
    response = attempt(user.email, PASSWORD, client=browser)
    assert "turned off" in text(response) and response.status_code == 429


# -- the unlock link ---------------------------------------------------------------------


def _unlock_path(user) -> str:
    (message,) = [m for m in mail.outbox if m.to == [user.email] and "trying to sign in" in m.subject]
    url = re.search(r"https://\S+/accounts/unlock/\S+/", message.body).group(0)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_the_owner_is_emailed_an_unlock_link_once_when_throttling_starts():
    user = make_user()
    mail.outbox.clear()
    flood(user.email, 5)
    assert len([m for m in mail.outbox if "trying to sign in" in m.subject]) == 1
    flood(user.email, 5)
    assert len([m for m in mail.outbox if "trying to sign in" in m.subject]) == 1  # not one per guess


def test_the_unlock_link_lets_that_browser_in_once():
    user = make_user()
    mail.outbox.clear()
    flood(user.email)
    path = _unlock_path(user)
    browser = HTTPSClient()
    page = browser.get(path)  # a mail scanner's GET changes nothing
    assert page.status_code == 200 and "Unlock this browser" in text(page)
    assert browser.get(path).status_code == 200
    response = browser.post(path)
    assert response.status_code == 302 and devices.COOKIE_NAME in response.cookies
    assert attempt(user.email, PASSWORD, ip="192.0.2.44", client=browser).status_code == 302
    assert SecurityEvent.objects.filter(action=EventAction.AUTHN_LOGIN_UNLOCK, target=f"user:{user.pk}").exists()
    # Single use.
    again = HTTPSClient()
    assert again.post(path).status_code == 400
    assert again.get(path).status_code == 400
    assert THROTTLED in text(attempt(user.email, PASSWORD, ip="192.0.2.45", client=again))


def test_the_unlock_link_expires(monkeypatch):
    import time as time_module

    user = make_user()
    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() - unlock.UNLOCK_MAX_AGE - 5)
    token = unlock.make_token(user)
    monkeypatch.setattr(time_module, "time", real)
    assert unlock.check_token(token) is None
    assert HTTPSClient().post(f"/accounts/unlock/{token}/").status_code == 400


def test_the_unlock_link_is_bound_to_its_account():
    victim, other = make_user(), make_user()
    flood(victim.email)
    flood(other.email)
    token = unlock.make_token(other)
    browser = HTTPSClient()
    assert browser.post(f"/accounts/unlock/{token}/").status_code == 302
    assert THROTTLED in text(attempt(victim.email, PASSWORD, client=browser))
    # Editing the account id in the token breaks the signature.
    payload = signing.loads(unlock.make_token(other), salt="vouch.guard.unlock")
    tampered = signing.dumps({"u": victim.pk, "n": payload["n"]}, salt="not.the.salt")
    assert HTTPSClient().post(f"/accounts/unlock/{tampered}/").status_code == 400


def test_a_newer_link_replaces_the_older_one():
    user = make_user()
    first = unlock.make_token(user)
    second = unlock.make_token(user)
    assert unlock.check_token(first) is None
    assert unlock.check_token(second) == user


def test_bad_tokens_get_a_clear_400_not_an_error():
    for token in ("x", "a" * 400, "..%2F", "eyJ1IjoxfQ:1abc:zzz"):
        response = HTTPSClient().get(f"/accounts/unlock/{token}/")
        assert response.status_code in (400, 404)
        if response.status_code == 400:
            assert "does not work" in text(response)
