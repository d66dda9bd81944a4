"""The other guessable secrets get the same protection (P13): 2FA codes, recovery codes,
password reset links and email verification links are throttled, and a throttled
guess is refused even when it is right."""

from __future__ import annotations

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal import auth as totp

from tests.conftest import HTTPSClient, make_user
from tests.guard import throttle_helpers
from tests.guard.throttle_helpers import PASSWORD, attempt, text
from tests.totp import current_code
from vouch.guard import throttle

pytestmark = pytest.mark.django_db
clock = throttle_helpers.clock  # fixture


def _at_second_factor(user, ip: str = "192.0.2.30") -> HTTPSClient:
    browser = HTTPSClient()
    response = attempt(user.email, PASSWORD, ip=ip, client=browser)
    assert response.status_code == 302 and "/2fa/authenticate" in response["Location"], response.get("Location")
    return browser


def _authenticate(browser: HTTPSClient, code: str, ip: str = "192.0.2.30"):
    return browser.post("/accounts/2fa/authenticate/", {"code": code}, REMOTE_ADDR=ip)


def test_totp_codes_are_limited_per_account():
    user = make_user()
    secret = totp.generate_totp_secret()
    totp.TOTP.activate(user, secret)
    browser = _at_second_factor(user)
    for n in range(5):
        response = _authenticate(browser, f"{n:06d}")
        assert response.status_code == 200 and "_auth_user_id" not in browser.session
    # The sixth guess is refused even though it is the right code.
    response = _authenticate(browser, current_code(secret))
    assert response.status_code == 200 and "_auth_user_id" not in browser.session
    assert "Too many" in text(response)
    # From another address and another browser too: the limit is the account's.
    other = _at_second_factor(user, ip="192.0.2.31")
    assert "Too many" in text(_authenticate(other, current_code(secret), ip="192.0.2.31"))


def test_recovery_codes_share_the_same_limit():
    user = make_user()
    totp.TOTP.activate(user, totp.generate_totp_secret())
    codes = RecoveryCodes.activate(user).get_unused_codes()
    browser = _at_second_factor(user)
    for n in range(5):
        _authenticate(browser, f"{n:08d}")
    response = _authenticate(browser, codes[0])
    assert "Too many" in text(response) and "_auth_user_id" not in browser.session
    # Not used up by the refused attempt.
    assert codes[0] in RecoveryCodes(user.authenticator_set.get(type="recovery_codes")).get_unused_codes()


def test_password_reset_links_are_limited_per_address():
    user = make_user()
    guesser = HTTPSClient()
    statuses = []
    for n in range(11):
        response = guesser.post(
            f"/accounts/password/reset/key/{user.pk}-guess{n}/",
            {"password1": "whatever whatever 1", "password2": "whatever whatever 1"},
            REMOTE_ADDR="192.0.2.60",
        )
        statuses.append(response.status_code)
    assert 429 not in statuses[:10] and statuses[10] == 429


def test_email_verification_links_get_growing_delays_per_address(clock):
    guesser = HTTPSClient()
    for n in range(10):
        response = guesser.get(f"/accounts/confirm-email/guess{n}/", REMOTE_ADDR="192.0.2.61")
        assert response.status_code != 429
    refused = guesser.get("/accounts/confirm-email/guess-eleven/", REMOTE_ADDR="192.0.2.61")
    assert refused.status_code == 429 and "Try again in 1 minute" in text(refused)
    assert HTTPSClient().get("/accounts/confirm-email/x/", REMOTE_ADDR="192.0.2.62").status_code != 429
    clock.advance(throttle.delay_for(10, throttle.CODE_ADDRESS) + 1)
    assert guesser.get("/accounts/confirm-email/late/", REMOTE_ADDR="192.0.2.61").status_code != 429


def test_a_real_verification_link_still_works_before_the_limit():
    from allauth.account.models import EmailAddress, EmailConfirmationHMAC

    user = make_user()
    address = EmailAddress.objects.create(user=user, email="second@example.com", verified=False)
    key = EmailConfirmationHMAC(address).key
    browser = HTTPSClient()
    browser.force_login(user)
    assert browser.get(f"/accounts/confirm-email/{key}/").status_code == 200
    assert browser.post(f"/accounts/confirm-email/{key}/").status_code == 302
    address.refresh_from_db()
    assert address.verified


def test_code_throttle_api_for_other_secrets(clock, rf):
    request = rf.post("/", REMOTE_ADDR="192.0.2.70")
    for _ in range(5):
        throttle.check_code(request, "step_up", "someone@example.com")
        throttle.code_failed(request, "step_up", "someone@example.com")
    with pytest.raises(throttle.Throttled):
        throttle.check_code(request, "step_up", "someone@example.com")
    other = rf.post("/", REMOTE_ADDR="192.0.2.71")
    with pytest.raises(throttle.Throttled):  # per subject, whatever the address
        throttle.check_code(other, "step_up", "someone@example.com")
    throttle.check_code(other, "step_up", "someone.else@example.com")
    clock.advance(16)
    throttle.check_code(request, "step_up", "someone@example.com")


def test_a_hold_outlasts_a_flood_of_other_counters(rf, monkeypatch):
    """Counters from a thousand other networks (as a guesser with many addresses makes)
    do not push a hold out of the cache: the embedded default's database cache would
    otherwise cull the alphabetically first third of its keys past a few hundred."""
    # The throttle's clock stands still: the first hold lasts 15 s, which a thousand
    # counters can take on a loaded machine; the cull, not the clock, is under test.
    moment = throttle.now()
    monkeypatch.setattr(throttle, "now", lambda: moment)
    held = rf.get("/", REMOTE_ADDR="10.9.9.9")
    for _ in range(throttle.CODE_ADDRESS.free):
        throttle.code_failed(held, "link")
    with pytest.raises(throttle.Throttled):
        throttle.check_code(held, "link")
    for n in range(1000):
        throttle.code_failed(rf.get("/", REMOTE_ADDR=f"2001:db8:{n:x}::1"), "link")
    with pytest.raises(throttle.Throttled):
        throttle.check_code(held, "link")
