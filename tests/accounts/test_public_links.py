"""Every link in every email is built on VOUCH_PUBLIC_URL, whichever allowed host name
the request that caused the email arrived under (issue 14, item 4). A request may come
in under an internal name or an IP address (all in VOUCH_ALLOWED_HOSTS); the emailed
links must point to the address people use, never to the Host header."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db

INTERNAL = "vouch-internal.lan"  # what a proxy or a health check might send
HOSTS = [*settings.ALLOWED_HOSTS, INTERNAL]
URL = re.compile(r"\bhttps?://[^\s\"'<>]+")


@pytest.fixture(autouse=True)
def _internal_host_allowed():
    with override_settings(ALLOWED_HOSTS=HOSTS, PUBLIC_URL="https://vouch.example.com"):
        yield


def assert_public(message, host: str) -> None:
    """Every link of ``message`` (text and HTML) is on the public address, which names
    the site too; the request's host appears nowhere."""
    bodies = [message.body] + [content for content, _ in getattr(message, "alternatives", [])]
    links = [url for body in bodies for url in URL.findall(body)]
    assert links, f"no link in {message.subject!r}"
    for url in links:
        assert url.startswith("https://vouch.example.com/"), (message.subject, url)
    for text in (message.subject, *bodies):
        assert host.strip("[]") not in text.replace("vouch.example.com", ""), (host, message.subject)


def client_for(host: str) -> HTTPSClient:
    return HTTPSClient(HTTP_HOST=host)


@pytest.mark.parametrize("host", HOSTS)
def test_password_reset_and_unknown_account_mails(host, mailoutbox):
    user = make_user("reset-me@example.com", password=None)
    client = client_for(host)
    assert client.post(reverse("account_reset_password"), {"email": user.email}).status_code == 302
    assert client.post(reverse("account_reset_password"), {"email": "nobody@example.com"}).status_code == 302
    assert len(mailoutbox) == 2
    reset, unknown = mailoutbox
    assert "/accounts/password/reset/key/" in reset.body
    assert "/accounts/signup/" in unknown.body
    for message in mailoutbox:
        assert_public(message, host)


@pytest.mark.parametrize("host", HOSTS)
def test_signup_confirmation_and_account_already_exists_mails(host, mailoutbox):
    make_user("taken@example.com", password=None)
    client = client_for(host)
    data = {
        "full_name": "Grace Founder",
        "company_name": "Hopper Hiring",
        "region": "au",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    assert client.post(reverse("account_signup"), {**data, "email": "grace@example.com"}).status_code == 302
    assert client_for(host).post(reverse("account_signup"), {**data, "email": "taken@example.com"}).status_code == 302
    assert [m.to for m in mailoutbox] == [["grace@example.com"], ["taken@example.com"]]
    confirmation, exists = mailoutbox
    assert "https://vouch.example.com/accounts/confirm-email/" in confirmation.body
    assert "Hello from Vouch!" in confirmation.body
    assert "https://vouch.example.com/accounts/password/reset/" in exists.body
    for message in mailoutbox:
        assert_public(message, host)


@pytest.mark.parametrize("host", HOSTS)
def test_invitation_mail(host, owner, mailoutbox):
    client = client_for(host)
    client.force_login(owner.user)
    response = client.post(reverse("member_invite"), {"email": "new@example.com", "role": str(int(Role.RECRUITER))})
    assert response.status_code == 302
    (invitation,) = mailoutbox
    assert "https://vouch.example.com/invitations/" in invitation.body
    assert_public(invitation, host)
