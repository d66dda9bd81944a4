"""P16 scenarios, end to end through the login form: client addresses from several
countries arrive through the trusted proxy header, the clock is ours, and each signal
leads to its decision (allow, notify, step-up, suspend)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import override_settings

from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from tests.guard.risk_helpers import (  # noqa: F401 (fixtures)
    AUSTRALIA,
    FRANCE,
    GERMANY,
    GERMANY_SAME_NETWORK,
    NETHERLANDS,
    SAFARI_IPHONE,
    behind_proxy_fixture,
    clock_fixture,
    code_from,
    emails,
    get,
    post,
    sign_in,
    signed_in,
)
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import geo
from vouch.guard.models import AccountState, SignIn

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("behind_proxy")]

NEW_SIGN_IN = "New sign-in to your account"
CODE = "Your sign-in code"


def settle(client: HTTPSClient, user, ip: str) -> HTTPSClient:
    """A completed sign-in from ``ip`` on ``client`` (its device becomes known), then
    signed out; the emails it caused are cleared."""
    response = sign_in(client, user.email, ip)
    assert response.status_code == 302, response.content[:500]
    assert signed_in(client)
    post(client, "/accounts/logout/", {}, ip)
    mail.outbox.clear()
    return client


def last_sign_in(user) -> SignIn:
    return SignIn.objects.filter(user=user).order_by("-occurred_at", "-pk").first()


def test_geo_knows_the_test_addresses():
    assert geo.locate(GERMANY).country == "DE"
    assert geo.locate(GERMANY_SAME_NETWORK).country == "DE"
    assert geo.locate(GERMANY).asn == geo.locate(GERMANY_SAME_NETWORK).asn
    assert geo.locate(AUSTRALIA).country == "AU"
    assert geo.locate(FRANCE).country == "FR"
    assert geo.locate(NETHERLANDS).country == "NL"
    assert geo.locate("127.0.0.1") == geo.UNKNOWN
    assert geo.locate("10.1.2.3") == geo.UNKNOWN


def test_known_device_in_the_usual_place_is_allowed_without_email(clock):
    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    clock.advance(days=1)
    response = sign_in(client, user.email, GERMANY_SAME_NETWORK)
    assert response.status_code == 302 and signed_in(client)
    row = last_sign_in(user)
    assert (row.decision, row.signals, row.score) == ("allow", [], 0)
    assert row.country == "DE" and row.completed_at is not None
    assert mail.outbox == []


def test_new_device_signs_in_and_gets_a_new_sign_in_email_with_a_not_me_link(clock):
    user = make_user()
    settle(HTTPSClient(), user, GERMANY)
    clock.advance(hours=3)
    other = HTTPSClient()
    response = sign_in(other, user.email, GERMANY, agent=SAFARI_IPHONE)
    assert response.status_code == 302 and signed_in(other)
    row = last_sign_in(user)
    assert row.decision == "notify" and row.signals == ["new_device"]
    (message,) = emails(NEW_SIGN_IN)
    assert message.to == [user.email]
    assert "Germany" in message.body and "Safari on iPhone" in message.body
    assert "Monday 4 March 2030 at 12:00 UTC" in message.body
    assert "/accounts/not-me/" in message.body


def test_new_country_asks_for_an_emailed_code(clock):
    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    clock.advance(days=2)
    response = sign_in(client, user.email, AUSTRALIA)
    # The password was right, but no session yet: the emailed code comes first.
    assert response.status_code == 302 and response["Location"] == "/accounts/verify-sign-in/"
    assert not signed_in(client)
    row = last_sign_in(user)
    assert row.decision == "step_up"
    assert set(row.signals) == {"new_country", "new_network"}
    assert row.completed_at is None
    code = code_from(emails(CODE)[0])
    assert emails(NEW_SIGN_IN)  # and the person is told someone has the password
    response = post(client, "/accounts/verify-sign-in/", {"code": code}, AUSTRALIA)
    assert response.status_code == 302 and signed_in(client)
    row.refresh_from_db()
    assert row.completed_at is not None


def test_step_up_code_is_single_use_and_wrong_codes_are_limited(clock):
    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    clock.advance(days=2)
    sign_in(client, user.email, AUSTRALIA)
    code = code_from(emails(CODE)[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        response = post(client, "/accounts/verify-sign-in/", {"code": wrong}, AUSTRALIA)
        assert response.status_code == 400 and not signed_in(client)
    # The fifth wrong code abandons the sign-in: even the right code is useless now.
    response = post(client, "/accounts/verify-sign-in/", {"code": wrong}, AUSTRALIA)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    response = post(client, "/accounts/verify-sign-in/", {"code": code}, AUSTRALIA)
    assert not signed_in(client)
    assert SecurityEvent.objects.filter(action=EventAction.AUTHN_STEP_UP_FAIL, target=f"user:{user.pk}").count() == 5


def test_step_up_code_expires_after_ten_minutes(clock, monkeypatch):
    import time

    from vouch.guard import stages

    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    clock.advance(days=2)
    sign_in(client, user.email, AUSTRALIA)
    code = code_from(emails(CODE)[0])
    later = time.time() + 601
    monkeypatch.setattr(stages.time, "time", lambda: later)
    response = post(client, "/accounts/verify-sign-in/", {"code": code}, AUSTRALIA)
    assert response["Location"] == "/accounts/login/" and not signed_in(client)


def test_step_up_uses_two_factor_when_the_account_has_it(clock, monkeypatch):
    from allauth.mfa.totp.internal import auth as totp

    user = make_user()
    secret = "JBSWY3DPEHPK3PXP"
    totp.TOTP.activate(user, secret)
    seconds = [1_900_000_000]
    monkeypatch.setattr(totp.time, "time", lambda: seconds[0])

    def current_code() -> str:
        return totp.format_hotp_value(totp.hotp_value(secret, seconds[0] // 30))

    client = HTTPSClient()
    response = sign_in(client, user.email, GERMANY)
    assert response["Location"] == "/accounts/2fa/authenticate/"
    post(client, "/accounts/2fa/authenticate/", {"code": current_code()}, GERMANY)
    assert signed_in(client)
    post(client, "/accounts/logout/", {}, GERMANY)
    mail.outbox.clear()
    clock.advance(days=2)
    seconds[0] += 2 * 86400
    response = sign_in(client, user.email, AUSTRALIA)
    # The 2FA prompt is the step-up: no emailed code on top of it.
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert last_sign_in(user).decision == "step_up"
    response = post(client, "/accounts/2fa/authenticate/", {"code": current_code()}, AUSTRALIA)
    assert signed_in(client), response.content[:400]
    assert emails(CODE) == []
    assert last_sign_in(user).completed_at is not None


def test_impossible_travel_suspends_the_account_and_ends_its_sessions(clock):
    owner = make_user()
    company = make_company(owner=owner)
    user = add_member(company, Role.RECRUITER).user
    germany = settle(HTTPSClient(), user, GERMANY)
    sign_in(germany, user.email, GERMANY)
    assert signed_in(germany)
    mail.outbox.clear()
    clock.advance(minutes=45)
    australia = HTTPSClient()
    response = sign_in(australia, user.email, AUSTRALIA)
    assert response.status_code == 403
    assert "This account is suspended" in response.content.decode()
    assert not signed_in(australia)
    row = last_sign_in(user)
    assert row.decision == "suspend" and "impossible_travel" in row.signals
    state = AccountState.objects.get(user=user)
    assert state.is_suspended and "Australia" in state.suspension_reason
    # The German session is gone server-side, not just forgotten by a cookie.
    response = get(germany, "/dashboard/", GERMANY)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert emails("Your account was suspended", to=user.email)
    (to_owner,) = emails("A member's account was suspended")
    assert to_owner.to == [owner.email] and company.name in to_owner.body
    assert SecurityEvent.objects.filter(action=EventAction.ACCOUNT_SUSPENDED, target=f"user:{user.pk}").exists()


def test_far_but_slow_travel_is_not_impossible(clock):
    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    clock.advance(hours=30)  # Germany to Australia in 30 hours: a long flight, not a hijack
    sign_in(client, user.email, AUSTRALIA)
    row = last_sign_in(user)
    assert "impossible_travel" not in row.signals and row.decision == "step_up"


def test_anonymising_network_asks_for_a_code(clock, tmp_path):
    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    listing = tmp_path / "anonymisers.txt"
    listing.write_text("# exit nodes\n85.214.128.0/17\n2001:db8::/32\nnot-a-network\n")
    clock.advance(days=1)
    with override_settings(VOUCH_ANONYMISING_NETWORKS=str(listing)):
        response = sign_in(client, user.email, GERMANY)
    assert response["Location"] == "/accounts/verify-sign-in/"
    row = last_sign_in(user)
    assert row.signals == ["anonymising_network"] and row.decision == "step_up"


def test_many_failures_before_the_right_password_ask_for_a_code(clock, monkeypatch):
    from vouch.guard import throttle

    user = make_user()
    client = settle(HTTPSClient(), user, GERMANY)
    moment = [throttle.now()]
    monkeypatch.setattr(throttle, "now", lambda: moment[0])
    for _ in range(5):
        response = sign_in(client, user.email, GERMANY, password="wrong password, long enough")
        assert not signed_in(client)
    moment[0] += 3600  # wait out the brute-force delay
    clock.advance(hours=1)
    response = sign_in(client, user.email, GERMANY)
    assert response["Location"] == "/accounts/verify-sign-in/"
    row = last_sign_in(user)
    assert row.signals == ["recent_failures"] and row.decision == "step_up"
    post(client, "/accounts/verify-sign-in/", {"code": code_from(emails(CODE)[0])}, GERMANY)
    assert signed_in(client)
    # Once through, the count starts again: the next sign-in is ordinary.
    post(client, "/accounts/logout/", {}, GERMANY)
    clock.advance(hours=1)
    sign_in(client, user.email, GERMANY)
    assert signed_in(client) and last_sign_in(user).decision == "allow"


def test_one_address_trying_many_accounts_asks_for_a_code(clock):
    victims = [make_user() for _ in range(5)]
    attacker = HTTPSClient()
    for victim in victims:
        sign_in(attacker, victim.email, FRANCE, password="guessed password 123")
    target = make_user()
    settle(HTTPSClient(), target, NETHERLANDS)  # the target's own history is elsewhere
    clock.advance(days=1)
    response = sign_in(attacker, target.email, FRANCE)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert response["Location"] == "/accounts/verify-sign-in/" and not signed_in(attacker)
    row = last_sign_in(target)
    assert "address_many_accounts" in row.signals and row.decision == "step_up"


def test_a_failed_step_up_does_not_become_history(clock):
    """An attacker with the password but not the code must not make their country
    usual, nor make the owner's next sign-in look like impossible travel."""
    user = make_user()
    owner_device = settle(HTTPSClient(), user, GERMANY)
    clock.advance(days=1)
    sign_in(HTTPSClient(), user.email, AUSTRALIA)  # stops at the code
    clock.advance(minutes=30)
    sign_in(owner_device, user.email, GERMANY)
    assert signed_in(owner_device)
    assert last_sign_in(user).decision == "allow"


def test_first_sign_in_from_a_private_address_has_no_place_signals(clock):
    user = make_user()
    client = HTTPSClient()
    response = sign_in(client, user.email, "10.20.30.40")
    assert signed_in(client), response.content[:300]
    row = last_sign_in(user)
    assert row.country == "" and row.signals == ["new_device"]


def test_forwarded_address_from_an_untrusted_peer_is_ignored(clock):
    user = make_user()
    client = HTTPSClient()
    with override_settings(VOUCH_TRUSTED_PROXIES=[]):
        client.post(
            "/accounts/login/",
            {"login": user.email, "password": PASSWORD},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=AUSTRALIA,
        )
    assert last_sign_in(user).ip == "127.0.0.1"
