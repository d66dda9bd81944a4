"""Every wired flow records its event with the right action, outcome and company, and
no email address, password or token ever lands in the log."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.audit.helpers import all_rows_text, events
from tests.conftest import PASSWORD, HTTPSClient, make_user
from tests.totp import current_code
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Role
from vouch.audit.events import email_hash
from vouch.audit.models import EventAction, Outcome
from vouch.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD, **extra):
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


def reauthenticate(client) -> None:
    """allauth asks for the password again before email, 2FA, role and membership changes."""
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302


def assert_nothing_secret(*secrets: str) -> None:
    text = all_rows_text()
    for secret in secrets:
        assert secret and secret.lower() not in text.lower(), secret
    assert verify_chain().ok


def test_login_success_and_logout(client, owner):
    user = owner.user
    response = login(client, user.email, REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="TestBrowser/1.0")
    assert response.status_code == 302
    (event,) = events(EventAction.AUTHN_LOGIN_SUCCESS)
    assert event.actor_id == user.pk and event.outcome == Outcome.SUCCESS
    assert event.company_id is None  # an account event, not a company's
    assert event.ip == "198.51.100.4" and event.user_agent == "TestBrowser/1.0"
    client.post("/accounts/logout/")
    (event,) = events(EventAction.AUTHN_LOGOUT)
    assert event.actor_id == user.pk
    assert_nothing_secret(user.email, PASSWORD)


def test_login_failure_stores_only_a_keyed_hash_of_the_address(client, owner):
    user = owner.user
    assert login(client, user.email, "wrong password 123456").status_code == 200
    # From another network: failures are recorded once per network and minute.
    assert login(client, "Nobody@Example.org", "another wrong one 99", REMOTE_ADDR="198.51.100.4").status_code == 200
    known, unknown = events(EventAction.AUTHN_LOGIN_FAIL)
    assert known.outcome == unknown.outcome == Outcome.FAILURE
    assert known.actor_id is None and known.target == f"user:{user.pk}"
    assert known.details == {"email_hash": email_hash(user.email)}
    assert unknown.target == "" and unknown.details == {"email_hash": email_hash("nobody@example.org")}
    assert_nothing_secret(user.email, "nobody@example.org", "wrong password 123456", "another wrong one 99")


def test_forwarded_address_is_believed_only_from_a_trusted_proxy(client, owner, settings):
    login(client, "x@example.com", "nope nope nope 1", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.9")
    (event,) = events(EventAction.AUTHN_LOGIN_FAIL)
    assert event.ip == "192.0.2.10"


def test_password_change_and_reset(client, owner):
    user = owner.user
    client.force_login(user)
    new = "a completely new passphrase 6061"
    response = client.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new})
    assert response.status_code == 302
    (event,) = events(EventAction.AUTHN_PASSWORD_CHANGE)
    assert event.actor_id == user.pk and event.company_id is None

    resetter = HTTPSClient()
    resetter.post("/accounts/password/reset/", {"email": user.email})
    link = re.search(r"https?://[^\s/]+(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body).group(1)
    form_url = resetter.get(link)["Location"]
    newer = "reset passphrase for the test 9192"
    assert resetter.post(form_url, {"password1": newer, "password2": newer}).status_code == 302
    (event,) = events(EventAction.AUTHN_PASSWORD_RESET)
    assert event.actor_id == user.pk
    key = link.rstrip("/").rsplit("/", 1)[-1]
    assert_nothing_secret(user.email, PASSWORD, new, newer, key)


def test_email_change_and_confirmation(client, owner):
    user = owner.user
    client.force_login(user)
    reauthenticate(client)
    new_address = "new.address@example.net"
    response = client.post("/accounts/email/", {"action_add": "", "email": new_address})
    assert response.status_code == 302, response.content[:500]
    link = re.search(r"https?://[^\s/]+(/accounts/confirm-email/\S+/)", mail.outbox[-1].body).group(1)
    client.post(link)
    (confirmed,) = events(EventAction.USER_EMAIL_CONFIRMED)
    assert confirmed.actor_id == user.pk
    (changed,) = events(EventAction.USER_EMAIL_CHANGED)
    assert changed.actor_id == user.pk
    assert_nothing_secret(user.email, new_address, link.rstrip("/").rsplit("/", 1)[-1])


def test_two_factor_added_refused_and_removed(client, owner, django_capture_on_commit_callbacks):

    user = owner.user
    client.force_login(user)
    reauthenticate(client)
    client.get("/accounts/2fa/totp/activate/")
    secret = client.session["mfa.totp.secret"]
    code = current_code(secret)
    with django_capture_on_commit_callbacks(execute=True):  # allauth signals after commit
        response = client.post("/accounts/2fa/totp/activate/", {"code": code})
    assert response.status_code == 302, response.content[:500]
    added = events(EventAction.AUTHN_MFA_ADDED)
    assert {e.details["method"] for e in added} >= {"totp"}
    assert all(e.actor_id == user.pk for e in added)

    client.post("/accounts/logout/")
    login(client, user.email)
    client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    (failed,) = events(EventAction.AUTHN_MFA_FAIL)
    assert failed.outcome == Outcome.FAILURE

    client.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})
    assert events(EventAction.AUTHN_LOGIN_SUCCESS)
    reauthenticate(client)
    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302, response.content[:500]
    assert {e.details["method"] for e in events(EventAction.AUTHN_MFA_REMOVED)} >= {"totp"}
    assert_nothing_secret(user.email, PASSWORD, secret, code)


def test_role_change_and_deactivation_are_company_events(client, members, company):
    owner = members[Role.OWNER]
    target = members[Role.VIEWER]
    client.force_login(owner.user)
    reauthenticate(client)  # role changes and (de)activation ask for the password again
    client.post(f"/members/{target.pk}/role/", {f"m{target.pk}-role": Role.RECRUITER}, REMOTE_ADDR="198.51.100.8")
    (event,) = events(EventAction.PRIVILEGE_PERMISSIONS_CHANGED)
    assert event.company_id == company.pk and event.actor_id == owner.user_id
    assert event.target == f"membership:{target.pk}"
    assert event.details == {"user": f"user:{target.user_id}", "from": "viewer", "to": "recruiter"}
    assert event.ip == "198.51.100.8"

    client.post(f"/members/{target.pk}/active/", {"active": "0"})
    client.post(f"/members/{target.pk}/active/", {"active": "1"})
    (off,) = events(EventAction.MEMBER_DEACTIVATED)
    (on,) = events(EventAction.MEMBER_REACTIVATED)
    assert off.company_id == on.company_id == company.pk
    assert_nothing_secret(target.user.email)


def test_a_refused_change_records_no_change_but_an_authz_fail(client, members, company):
    admin, owner = members[Role.ADMIN], members[Role.OWNER]
    client.force_login(admin.user)
    response = client.post(f"/members/{owner.pk}/role/", {f"m{owner.pk}-role": Role.VIEWER})
    assert response.status_code == 403
    assert not events(EventAction.PRIVILEGE_PERMISSIONS_CHANGED)
    (event,) = events(EventAction.AUTHZ_FAIL)
    assert event.outcome == Outcome.BLOCKED and event.company_id == company.pk
    assert event.actor_id == admin.user_id and event.target == "route:member_role"
    assert event.details == {"reason": "policy", "method": "POST"}


def test_policy_403_on_a_page_is_recorded(client, members, company):
    client.force_login(members[Role.VIEWER].user)
    assert client.get("/security/events/").status_code == 403
    (event,) = events(EventAction.AUTHZ_FAIL)
    assert event.target == "route:security_events" and event.company_id == company.pk


def test_csrf_failure_is_recorded(csrf_client, owner, company):
    csrf_client.force_login(owner.user)
    response = csrf_client.post("/members/invite/", {"email": "x@example.com", "role": Role.VIEWER})
    assert response.status_code == 403
    (event,) = events(EventAction.AUTHZ_FAIL)
    assert event.details["reason"] == "csrf" and event.outcome == Outcome.BLOCKED
    assert event.company_id == company.pk and event.target == "route:member_invite"
    assert not Invitation.objects.exists()


def test_invitation_sent_accepted_and_revoked(client, owner, company):
    client.force_login(owner.user)
    reauthenticate(client)  # inviting hands out a role: the password is asked again
    client.post("/members/invite/", {"email": "Invitee@Example.com", "role": Role.RECRUITER})
    (sent,) = events(EventAction.INVITATION_SENT)
    invitation = Invitation.objects.get()
    assert sent.company_id == company.pk and sent.target == f"invitation:{invitation.pk}"
    assert sent.details == {"role": "recruiter"}
    link = re.search(r"https?://[^\s/]+(/invitations/\S+/)", mail.outbox[-1].body).group(1)
    token = link.rstrip("/").rsplit("/", 1)[-1]

    invitee = make_user("invitee@example.com")
    other = HTTPSClient()
    other.force_login(invitee)
    other.get(link)
    assert other.post("/invitations/accept/").status_code == 302
    (accepted,) = events(EventAction.INVITATION_ACCEPTED)
    membership = Membership.objects.get(user=invitee)
    assert accepted.actor_id == invitee.pk and accepted.company_id == company.pk
    assert accepted.details == {"membership": f"membership:{membership.pk}", "role": "recruiter"}

    client.post("/members/invite/", {"email": "second@example.com", "role": Role.VIEWER})
    second = Invitation.objects.get(email="second@example.com")
    client.post(f"/invitations/{second.pk}/revoke/")
    (revoked,) = events(EventAction.INVITATION_REVOKED)
    assert revoked.company_id == company.pk and revoked.target == f"invitation:{second.pk}"
    assert_nothing_secret("invitee@example.com", "second@example.com", token, owner.user.email)
