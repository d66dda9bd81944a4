"""P17: every account-change email, read from the outbox and from a real SMTP server
(aiosmtpd, over STARTTLS). Each says what happened, when (UTC), from where (place and
device) and what to do if it was not the account's owner."""

from __future__ import annotations

import email
import email.policy

import pytest
from allauth.account import signals as account_signals
from allauth.account.models import EmailAddress
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.db import transaction
from django.test import RequestFactory, override_settings

from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from tests.guard.risk_helpers import (
    FIREFOX,
    GERMANY,
    PROXY,
    behind_proxy_fixture,  # noqa: F401 (fixtures)
    clock_fixture,  # noqa: F401 (fixtures)
    html_of,
)
from tests.outbox.test_smtp_tls import (  # noqa: F401 (fixtures)
    certificate,
    free_port,
    smtp_settings,
    starttls_server,
)
from vouch.accounts import members
from vouch.accounts.policy import Role
from vouch.guard import notifications, suspension
from vouch.outbox.models import QueuedMail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("behind_proxy")]
WHEN = "Monday 4 March 2030 at 09:00 UTC"


def request_from(ip: str = GERMANY, user=None):
    request = RequestFactory().post("/", REMOTE_ADDR=ip, HTTP_USER_AGENT=FIREFOX)
    request.user = user or AnonymousUser()
    request.session = SessionStore()
    return request


def authenticator(user, kind):
    return Authenticator.objects.create(user=user, type=kind, data={})


# Each case: (kind, trigger(user) -> recipients expected, words the email must say).
def _password_changed(user):
    account_signals.password_changed.send(sender=type(user), request=request_from(user=user), user=user)
    return [user.email]


def _password_reset(user):
    account_signals.password_reset.send(sender=type(user), request=request_from(), user=user)
    return [user.email]


def _email_changed(user):
    old = EmailAddress.objects.get(user=user)
    new = EmailAddress.objects.create(user=user, email="new.address@example.com", verified=True)
    account_signals.email_changed.send(
        sender=type(user), request=request_from(), user=user, from_email_address=old, to_email_address=new
    )
    return ["new.address@example.com", old.email]


def _mfa_added(user):
    mfa_signals.authenticator_added.send(
        sender=Authenticator, request=request_from(), user=user, authenticator=authenticator(user, "totp")
    )
    return [user.email]


def _mfa_removed(user):
    mfa_signals.authenticator_removed.send(
        sender=Authenticator, request=request_from(), user=user, authenticator=authenticator(user, "webauthn")
    )
    return [user.email]


def _recovery_codes(user):
    mfa_signals.authenticator_reset.send(
        sender=Authenticator, request=request_from(), user=user, authenticator=authenticator(user, "recovery_codes")
    )
    return [user.email]


def _account_suspended(user):
    suspension.suspend(user, reason="Suspicious sign-in from Australia", request=request_from())
    return [user.email]


def _account_restored(user):
    suspension.suspend(user, reason="test")
    mail.outbox.clear()
    suspension.after_password_reset(user, request=request_from())
    return [user.email]


def _new_sign_in(user):
    client = HTTPSClient()
    client.post(
        "/accounts/login/",
        {"login": user.email, "password": PASSWORD},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=GERMANY,
        HTTP_USER_AGENT=FIREFOX,
    )
    return [user.email]


def _sessions_ended(user):
    from allauth.usersessions.models import UserSession

    from vouch.guard import sessions

    company = make_company("Careful Hiring")
    member = add_member(company, Role.VIEWER, user=user)
    UserSession.objects.create(user=user, ip="192.0.2.1", session_key="k" * 32, user_agent=FIREFOX)
    owner = company.memberships.get(role=Role.OWNER)
    sessions.end_member_sessions(owner, member, request=request_from(user=owner.user))
    return [user.email]


CASES = {
    "password_changed": (_password_changed, "Your password was changed", ["password", "was changed"]),
    "password_reset": (_password_reset, "Your password was reset", ["reset through the link"]),
    "email_changed": (_email_changed, "email address was changed", ["new.address@example.com"]),
    "mfa_added": (_mfa_added, "Two-factor authentication was added", ["authenticator app"]),
    "mfa_removed": (_mfa_removed, "Two-factor authentication was removed", ["security key or passkey"]),
    "recovery_codes": (_recovery_codes, "New recovery codes", ["old codes no longer work"]),
    "account_suspended": (_account_suspended, "Your account was suspended", ["Australia", "reset your password"]),
    "account_restored": (_account_restored, "Your account was restored", ["no longer suspended"]),
    "new_sign_in": (_new_sign_in, "New sign-in to your account", ["/accounts/not-me/"]),
    "sessions_ended": (_sessions_ended, "You were signed out of Vouch", ["of Careful Hiring", "1 session ended"]),
}


def check(message_text: str, html: str, words: list[str], kind: str, advice: str = "/accounts/password/reset/") -> None:
    assert WHEN in message_text
    for word in words:
        assert word in message_text, (kind, word)
    # From where: the place and the device.
    assert "Germany (Strato AG)" in message_text and "Firefox on Windows" in message_text
    # What to do if it was not them: a way back in for the owner.
    assert advice in message_text and advice in html
    assert "<script" not in html


@pytest.mark.parametrize("kind", sorted(CASES))
def test_email_in_the_outbox(kind, clock):
    trigger, subject, words = CASES[kind]
    user = make_user()
    expected = trigger(user)
    sent = [m for m in mail.outbox if subject in m.subject]
    assert sorted(a for m in sent for a in m.to) == sorted(expected), [m.subject for m in mail.outbox]
    for message in sent:
        assert message.subject.startswith("[Vouch] ")
        check(message.body, html_of(message), words, kind)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_email_through_a_real_smtp_server(kind, clock, starttls_server, certificate):  # noqa: F811
    trigger, subject, words = CASES[kind]
    user = make_user()
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        expected = trigger(user)
    received = [
        email.message_from_string(m["content"], policy=email.policy.default) for m in starttls_server.collector.messages
    ]
    matching = [m for m in received if subject in str(m["Subject"])]
    assert sorted(str(m["To"]) for m in matching) == sorted(expected)
    assert all(m["tls"] for m in starttls_server.collector.messages)
    for message in matching:
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        check(text, html, words, kind)


def test_email_change_tells_the_old_address_why(clock):
    user = make_user()
    _email_changed(user)
    (to_old,) = [m for m in mail.outbox if user.email in m.to]
    assert "writing to the old address" in to_old.body


def test_recovery_codes_made_with_a_first_method_send_one_email(clock):
    user = make_user()
    _mfa_added(user)
    mfa_signals.authenticator_added.send(
        sender=Authenticator, request=request_from(), user=user, authenticator=authenticator(user, "recovery_codes")
    )
    assert len(mail.outbox) == 1


def test_role_change_is_announced_after_commit(clock, django_capture_on_commit_callbacks):
    company = make_company()
    owner = company.memberships.get(role=Role.OWNER)
    target = add_member(company, Role.VIEWER)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        members.change_role(owner, target, Role.ADMIN, request=request_from())
    (message,) = [m for m in mail.outbox if "Your role changed" in m.subject]
    assert message.to == [target.user.email]
    assert "from Viewer to Admin" in message.body and company.name in message.body
    check(message.body, html_of(message), [], "role_changed", advice="ask the owners of")


def test_role_change_that_is_rolled_back_sends_nothing(clock, django_capture_on_commit_callbacks):
    company = make_company()
    owner = company.memberships.get(role=Role.OWNER)
    target = add_member(company, Role.VIEWER)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        members.change_role(owner, target, Role.ADMIN, request=request_from())
        raise RuntimeError("something later in the request failed")
    assert [m for m in mail.outbox if "Your role changed" in m.subject] == []


def test_real_password_change_sends_the_email(clock):
    user = make_user()
    client = HTTPSClient()
    client.post(
        "/accounts/login/",
        {"login": user.email, "password": PASSWORD},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=GERMANY,
        HTTP_USER_AGENT=FIREFOX,
    )
    mail.outbox.clear()
    new = "another long passphrase 99"
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": new, "password2": new},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=GERMANY,
        HTTP_USER_AGENT=FIREFOX,
    )
    assert response.status_code == 302, response.content[:300]
    (message,) = [m for m in mail.outbox if "Your password was changed" in m.subject]
    check(message.body, html_of(message), [], "password_changed")


def test_a_mail_outage_does_not_break_the_change_and_the_mail_is_kept(clock):
    user = make_user()
    with override_settings(**smtp_settings(free_port())):  # nobody listens: mail is down
        assert notifications.send(notifications.PASSWORD_CHANGED, user, request=request_from()) is True
    # Kept for the worker (tests/outbox/test_queue.py sends it once mail is back).
    assert QueuedMail.objects.filter(kind="password_changed", sent_at__isnull=True).count() == 1


def test_a_message_that_cannot_be_rendered_is_logged_not_raised(clock, monkeypatch):
    user = make_user()

    def broken(*args, **kwargs):
        raise ValueError("template trouble")

    monkeypatch.setattr("vouch.guard.notifications.render_to_string", broken)
    assert notifications.send(notifications.PASSWORD_CHANGED, user, request=request_from()) is False
