"""Joining Vouch sends exactly the mail it needs and no false alarm (P17): confirming
the first address of a new account is not an "email address was changed" event, and
neither is joining a company through an invitation."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db

CONFIRM_LINK = re.compile(r"https://[^\s/]+(/accounts/confirm-email/[^\s/]+/)")
INVITATION_LINK = re.compile(r"https://[^\s/]+(/invitations/[A-Za-z0-9_\-]+/)")
CONFIRM_SUBJECT = "[Vouch] Please Confirm Your Email Address"


def sent(outbox) -> list[tuple[str, str]]:
    return [(", ".join(m.to), m.subject) for m in outbox]


def invite(owner, email: str, mailoutbox) -> str:
    inviter = HTTPSClient()
    inviter.force_login(owner.user)
    response = inviter.post(reverse("member_invite"), {"email": email, "role": str(int(Role.RECRUITER))})
    assert response.status_code == 302
    (invitation,) = mailoutbox
    assert invitation.to == [email]
    mailoutbox.clear()
    return INVITATION_LINK.search(invitation.body).group(1)


def test_company_sign_up_and_confirmation_send_only_the_confirmation_mail(mailoutbox):
    client = HTTPSClient()
    response = client.post(
        reverse("account_signup"),
        {
            "full_name": "Grace Founder",
            "email": "grace@example.com",
            "company_name": "Hopper Hiring",
            "region": "au",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert sent(mailoutbox) == [("grace@example.com", CONFIRM_SUBJECT)]
    confirm = CONFIRM_LINK.search(mailoutbox[0].body).group(1)

    assert client.post(confirm).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200  # confirmed and signed in
    assert sent(mailoutbox) == [("grace@example.com", CONFIRM_SUBJECT)]


def test_signing_up_through_an_invitation_sends_nothing_more(owner, mailoutbox):
    path = invite(owner, "nora@example.com", mailoutbox)
    client = HTTPSClient()
    client.get(path)
    response = client.post(
        reverse("account_signup"),
        {"full_name": "Nora Newcomer", "email": "nora@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=User.objects.get(email="nora@example.com")).company == owner.company
    assert client.get(reverse("dashboard")).status_code == 200
    assert sent(mailoutbox) == []


def test_an_existing_account_accepting_an_invitation_gets_no_alarm(owner, mailoutbox):
    invitee = make_user("existing@example.com")
    path = invite(owner, "existing@example.com", mailoutbox)
    client = HTTPSClient()
    client.force_login(invitee)
    client.get(path)
    assert client.post(reverse("invitation_accept")).status_code == 302
    assert Membership.objects.filter(user=invitee, company=owner.company, is_active=True).exists()
    assert sent(mailoutbox) == []
