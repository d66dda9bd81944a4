"""Suspension (P16): "this wasn't me" links, refusing a suspended account without
revealing anything to a wrong password, restoring through a password reset, and an
admin's approval where the company asks for it."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.accounts.helpers import mark_reauthenticated
from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from tests.guard.risk_helpers import (  # noqa: F401 (fixtures)
    GERMANY,
    SAFARI_IPHONE,
    behind_proxy_fixture,
    clock_fixture,
    emails,
    get,
    link_from,
    post,
    sign_in,
    signed_in,
)
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import suspension
from vouch.guard.models import AccountState, CompanySecuritySettings, SignIn

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("behind_proxy")]
NEW_PASSWORD = "a brand new passphrase 77"


def new_sign_in_email(user, clock) -> tuple[HTTPSClient, object]:
    """The user signs in on one browser, then someone on another: the second sends the
    new-sign-in email. Returns the second browser (signed in) and the email."""
    first = HTTPSClient()
    sign_in(first, user.email, GERMANY)
    post(first, "/accounts/logout/", {}, GERMANY)
    mail.outbox.clear()
    clock.advance(hours=2)
    intruder = HTTPSClient()
    sign_in(intruder, user.email, GERMANY, agent=SAFARI_IPHONE)
    assert signed_in(intruder)
    (message,) = emails("New sign-in")
    return intruder, message


def test_not_me_link_asks_first_then_suspends_and_ends_sessions(clock):
    owner = make_user()
    company = make_company(owner=owner)
    user = add_member(company, Role.ADMIN).user
    intruder, message = new_sign_in_email(user, clock)
    path = link_from(message, "/accounts/not-me/")
    victim = HTTPSClient()
    # Opening the link (or a mail scanner prefetching it) changes nothing.
    page = victim.get(path)
    assert page.status_code == 200 and "Suspend my account now" in page.content.decode()
    assert not suspension.is_suspended(user)
    done = victim.post(path)
    assert done.status_code == 200 and "Your account is suspended" in done.content.decode()
    assert suspension.is_suspended(user)
    # The intruder's session ended on the server.
    response = get(intruder, "/dashboard/", GERMANY)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert SignIn.objects.filter(user=user, reported_at__isnull=False).count() == 1
    event = SecurityEvent.objects.get(action=EventAction.ACCOUNT_SUSPENDED, target=f"user:{user.pk}")
    assert event.details["by"] == "owner"
    assert emails("Your account was suspended", to=user.email)
    assert emails("A member's account was suspended", to=owner.email)
    # Single use.
    again = victim.post(path)
    assert again.status_code == 404


def test_not_me_link_refuses_forged_tampered_and_expired_tokens(clock, monkeypatch):
    user = make_user()
    _intruder, message = new_sign_in_email(user, clock)
    path = link_from(message, "/accounts/not-me/")
    client = HTTPSClient()
    token = path.rstrip("/").rsplit("/", 1)[-1]
    tampered = path.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert client.post(tampered).status_code == 404
    assert client.post("/accounts/not-me/x" * 1 + "/").status_code == 404
    assert client.post("/accounts/not-me/" + "a" * 400 + "/").status_code == 404
    import time

    from django.core import signing

    later = time.time() + 8 * 24 * 3600
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert client.post(path).status_code == 404
    assert client.get(path).status_code == 404
    assert not suspension.is_suspended(user)


def test_suspended_account_cannot_sign_in_and_wrong_passwords_reveal_nothing(clock):
    suspended = make_user()
    ordinary = make_user()
    suspension.suspend(suspended, reason="test")
    right = sign_in(HTTPSClient(), suspended.email, GERMANY)
    assert right.status_code == 403 and "This account is suspended" in right.content.decode()
    wrong_suspended = sign_in(HTTPSClient(), suspended.email, GERMANY, password="not it at all, sorry")
    wrong_ordinary = sign_in(HTTPSClient(), ordinary.email, GERMANY, password="not it at all, sorry")
    assert wrong_suspended.status_code == wrong_ordinary.status_code == 200
    body_s = wrong_suspended.content.decode().replace(suspended.email, "EMAIL")
    body_o = wrong_ordinary.content.decode().replace(ordinary.email, "EMAIL")
    assert "suspended" not in body_s.lower()
    strip = re.compile(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[^"]+"')
    assert strip.sub("", body_s) == strip.sub("", body_o)
    assert SecurityEvent.objects.filter(
        action=EventAction.AUTHN_LOGIN_FAIL, target=f"user:{suspended.pk}", outcome="blocked"
    ).exists()


def reset_password(email: str) -> None:
    client = HTTPSClient()
    mail.outbox.clear()
    client.post("/accounts/password/reset/", {"email": email})
    (message,) = [m for m in mail.outbox if email in m.to]
    path = link_from(message, "/accounts/password/reset/key/")
    response = client.get(path)
    response = client.post(response["Location"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302, response.content[:300]


def test_password_reset_restores_a_suspended_account(clock):
    user = make_user()
    suspension.suspend(user, reason="test")
    reset_password(user.email)
    assert not suspension.is_suspended(user)
    assert emails("Your account was restored", to=user.email)
    assert emails("Your password was reset", to=user.email)
    client = HTTPSClient()
    sign_in(client, user.email, GERMANY, password=NEW_PASSWORD)
    assert signed_in(client)
    assert SecurityEvent.objects.filter(action=EventAction.ACCOUNT_RESTORED, target=f"user:{user.pk}").exists()


def test_company_can_require_an_admins_approval(clock):
    owner = make_user()
    company = make_company(owner=owner)
    admin = add_member(company, Role.ADMIN)
    member = add_member(company, Role.RECRUITER)
    CompanySecuritySettings.objects.update_or_create(company=company, defaults={"restore_needs_admin_approval": True})
    suspension.suspend(member.user, reason="Suspicious sign-in from Australia")
    admin_client = HTTPSClient()
    admin_client.force_login(admin.user)
    mark_reauthenticated(admin_client)
    page = admin_client.get("/members/suspended/")
    assert page.status_code == 200 and member.user.email in page.content.decode()
    # Before the reset there is nothing to approve.
    refused = admin_client.post(f"/members/suspended/{member.pk}/approve/")
    assert refused.status_code == 302 and suspension.is_suspended(member.user)
    reset_password(member.user.email)
    state = AccountState.objects.get(user=member.user)
    assert state.is_suspended and state.awaiting_approval
    assert emails("an administrator's approval is needed", to=member.user.email)
    assert {a for m in emails("A member's account was suspended") for a in m.to} >= {owner.email, admin.user.email}
    waiting = sign_in(HTTPSClient(), member.user.email, GERMANY, password=NEW_PASSWORD)
    assert waiting.status_code == 403 and "still has to approve" in waiting.content.decode()
    # A recruiter (another member) may not approve; the admin may.
    peer = add_member(company, Role.RECRUITER)
    peer_client = HTTPSClient()
    peer_client.force_login(peer.user)
    mark_reauthenticated(peer_client)
    assert peer_client.post(f"/members/suspended/{member.pk}/approve/").status_code == 403
    assert suspension.is_suspended(member.user)
    response = admin_client.post(f"/members/suspended/{member.pk}/approve/")
    assert response.status_code == 302 and not suspension.is_suspended(member.user)
    assert emails("Your account was restored", to=member.user.email)
    client = HTTPSClient()
    sign_in(client, member.user.email, GERMANY, password=NEW_PASSWORD)
    assert signed_in(client)


def test_approval_is_refused_across_companies_and_on_oneself(clock):
    company = make_company()
    other = make_company()
    admin = add_member(company, Role.ADMIN)
    stranger = add_member(other, Role.RECRUITER)
    suspension.suspend(stranger.user, reason="test")
    AccountState.objects.filter(user=stranger.user).update(awaiting_approval=True)
    client = HTTPSClient()
    client.force_login(admin.user)
    mark_reauthenticated(client)
    assert client.post(f"/members/suspended/{stranger.pk}/approve/").status_code == 404
    assert client.get("/members/suspended/").content.decode().count(stranger.user.email) == 0
    assert suspension.is_suspended(stranger.user)
    # Nobody approves their own return (an owner whose password leaked included).
    own = company.memberships.get(role=Role.OWNER)
    suspension.suspend(own.user, reason="test")
    AccountState.objects.filter(user=own.user).update(awaiting_approval=True)
    with pytest.raises(Exception):  # noqa: B017 - PermissionDenied from the policy
        suspension.approve(own, own)


def test_suspension_ends_sessions_in_the_store_without_a_listing_row(clock):
    """Sessions made before allauth.usersessions listed them are found by scanning."""
    from allauth.usersessions.models import UserSession

    user = make_user()
    client = HTTPSClient()
    client.force_login(user)
    UserSession.objects.filter(user=user).delete()
    suspension.suspend(user, reason="test")
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=client.session.session_key).exists()


def test_suspended_member_page_is_empty_and_clear_without_suspensions(clock):
    company = make_company()
    client = HTTPSClient()
    client.force_login(company.memberships.get(role=Role.OWNER).user)
    page = client.get("/members/suspended/")
    assert page.status_code == 200 and "No suspended members." in page.content.decode()


def test_suspend_twice_is_one_suspension(clock):
    user = make_user()
    assert suspension.suspend(user, reason="first") is True
    assert suspension.suspend(user, reason="second") is False
    assert AccountState.objects.get(user=user).suspension_reason == "first"
    assert SecurityEvent.objects.filter(action=EventAction.ACCOUNT_SUSPENDED, target=f"user:{user.pk}").count() == 1
    assert sign_in(HTTPSClient(), user.email, GERMANY, password=PASSWORD).status_code == 403


def test_approving_a_return_asks_for_the_password_first(clock):
    company = make_company()
    admin = add_member(company, Role.ADMIN)
    member = add_member(company, Role.RECRUITER)
    suspension.suspend(member.user, reason="test")
    AccountState.objects.filter(user=member.user).update(awaiting_approval=True)
    client = HTTPSClient()
    client.force_login(admin.user)
    response = client.post(f"/members/suspended/{member.pk}/approve/")
    assert response.status_code == 302 and "/reauthenticate/" in response["Location"]
    assert suspension.is_suspended(member.user)
