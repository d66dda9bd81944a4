"""Invitations: hashed single-use tokens, the token leaves the URL at once, only the
invited address can accept, and joining through signup (P13, P20)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import models
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_user
from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.access import invitations
from vouch.accounts.models import Invitation, Membership, User
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.outbox.models import QueuedMail
from vouch.tenancy.models import Company
from vouch.tenancy.services import SESSION_COMPANY_KEY

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https://[^\s/]+/invitations/([A-Za-z0-9_\-]+)/")
CSRF_IN_PAGE = re.compile(rb'"X-CSRFToken": "[^"]*"')


def send_invitation(owner, email: str, role: Role = Role.RECRUITER, mailoutbox=None) -> tuple[str, str]:
    """Invite over HTTP as ``owner``; return (token, path) read from the email."""
    inviter = HTTPSClient()
    inviter.force_login(owner.user)
    sent_before = len(mailoutbox)
    response = inviter.post(reverse("member_invite"), {"email": email, "role": str(int(role))})
    assert response.status_code == 302
    assert len(mailoutbox) == sent_before + 1
    mail = mailoutbox[-1]
    assert mail.to == [email.lower()]
    token = LINK.search(mail.body).group(1)
    return token, reverse("invitation_open", args=[token])


def neutral(response) -> bytes:
    return CSRF_IN_PAGE.sub(b"", response.content)


# Storage -------------------------------------------------------------------------------------


def test_token_is_stored_only_as_its_sha256(owner, mailoutbox):
    token, _ = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert invitation.token_hash != token
    # The raw token is in no text column of any table, control or company database.
    with company_context(owner.company):
        for model in apps.get_models():
            text_fields = [
                f.name for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))
            ]
            for field in text_fields:
                assert not model._default_manager.filter(**{f"{field}__contains": token}).exists(), (model, field)


def test_tokens_are_unique_per_invitation(owner, mailoutbox):
    first, _ = send_invitation(owner, "a@example.com", mailoutbox=mailoutbox)
    second, _ = send_invitation(owner, "b@example.com", mailoutbox=mailoutbox)
    assert first != second


# Opening the link -----------------------------------------------------------------------------


def test_opening_the_link_parks_the_token_and_drops_it_from_the_url(client, owner, mailoutbox):
    token, path = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("invitation_accept")
    assert token not in response["Location"]
    assert client.session[invitations.SESSION_KEY] == token
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"Join Acme Hiring" in page.content
    assert token.encode() not in page.content


def _make_expired(invitation):
    invitation.expires_at = timezone.now() - timedelta(seconds=1)
    invitation.save()


def _make_revoked(invitation):
    invitation.revoked_at = timezone.now()
    invitation.save()


def _make_used(invitation):
    invitations.accept(invitation, make_invitee(invitation.email))


def _make_company_inactive(invitation):
    Company.objects.filter(pk=invitation.company_id).update(is_active=False)


def make_invitee(email):
    return fast_user(email)


@pytest.mark.parametrize(
    "spoil",
    [None, _make_expired, _make_revoked, _make_used, _make_company_inactive],
    ids=["guessed", "expired", "revoked", "used", "company_inactive"],
)
def test_bad_tokens_get_the_same_neutral_404(client, owner, mailoutbox, spoil):
    token, path = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    if spoil is None:
        path = reverse("invitation_open", args=["A" * len(token)])
    else:
        spoil(Invitation.objects.get())
    memberships_before = Membership.objects.count()

    response = client.get(path)
    assert response.status_code == 404
    assert b"This invitation link is not valid" in response.content
    assert b"Acme Hiring" not in response.content
    assert invitations.SESSION_KEY not in client.session

    # Identical to a plainly made-up token's page: nothing tells the cases apart.
    reference = HTTPSClient().get(reverse("invitation_open", args=["nonsense"]))
    assert reference.status_code == 404
    assert neutral(response) == neutral(reference)
    # And nobody joined through it, signed in or not.
    client.force_login(make_invitee("new@example.com") if spoil is not _make_used else User.objects.last())
    client.get(path)
    assert client.post(reverse("invitation_accept")).status_code == 404
    assert Membership.objects.count() == memberships_before


@pytest.mark.parametrize("token", ["x" * 129, "%00", "..%2F..%2Fetc%2Fpasswd", "' OR 1=1 --"])
def test_odd_tokens_are_404_not_errors(client, token):
    response = client.get(f"/invitations/{token}/")
    assert response.status_code == 404


def test_accept_page_without_an_invitation_is_the_neutral_404(client, owner):
    assert client.get(reverse("invitation_accept")).status_code == 404
    client.force_login(owner.user)
    response = client.post(reverse("invitation_accept"))
    assert response.status_code == 404
    assert b"This invitation link is not valid" in response.content


def test_a_token_expiring_after_it_was_parked_is_refused(client, owner, mailoutbox):
    _, path = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    client.get(path)
    _make_expired(Invitation.objects.get())
    assert client.get(reverse("invitation_accept")).status_code == 404
    invitee = make_invitee("new@example.com")
    client.force_login(invitee)
    assert client.post(reverse("invitation_accept")).status_code == 404
    assert not Membership.objects.filter(user=invitee).exists()


# Accepting -------------------------------------------------------------------------------------


def test_only_the_invited_address_can_accept(client, owner, mailoutbox):
    _, path = send_invitation(owner, "invited@example.com", mailoutbox=mailoutbox)
    someone_else = fast_user("someone.else@example.com")
    client.force_login(someone_else)
    client.get(path)
    page = client.get(reverse("invitation_accept"))
    assert page.status_code == 200
    assert b"sent to another email address" in page.content
    assert b"Accept invitation" not in page.content

    response = client.post(reverse("invitation_accept"), follow=True)
    assert b"sent to a different email address" in response.content
    assert not Membership.objects.filter(user=someone_else, company=owner.company).exists()
    invitation = Invitation.objects.get()
    assert invitation.accepted_at is None
    # The invited person can still use it.
    with pytest.raises(invitations.InvitationError):
        invitations.accept(invitation, someone_else)
    assert invitations.accept(invitation, make_invitee("Invited@Example.com")).role == Role.RECRUITER


def test_accepting_twice_fails(client, owner, mailoutbox):
    token, path = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    invitee = make_invitee("new@example.com")
    client.force_login(invitee)
    client.get(path)
    response = client.post(reverse("invitation_accept"))
    assert response.status_code == 302
    membership = Membership.objects.get(user=invitee, company=owner.company)
    assert membership.role == Role.RECRUITER

    # Again in the same session, by reopening the link, in another session, by the service.
    assert client.post(reverse("invitation_accept")).status_code == 404
    assert client.get(path).status_code == 404
    other = HTTPSClient()
    other.force_login(invitee)
    assert other.get(path).status_code == 404
    with pytest.raises(invitations.InvitationError):
        invitations.accept(Invitation.objects.get(), invitee)
    assert Membership.objects.filter(user=invitee).count() == 1


def test_an_accepted_invitation_cannot_bring_back_a_deactivated_member(owner, mailoutbox):
    """Deactivation must stick: the invitation the member once accepted is spent."""
    send_invitation(owner, "new@example.com", Role.ADMIN, mailoutbox=mailoutbox)
    invitee = make_invitee("new@example.com")
    invitation = Invitation.objects.get()
    membership = invitations.accept(invitation, invitee)
    membership.is_active = False
    membership.save()
    with pytest.raises(invitations.InvitationError, match="already been used"):
        invitations.accept(Invitation.objects.get(), invitee)
    membership.refresh_from_db()
    assert membership.is_active is False


def test_an_active_member_cannot_accept_an_invitation_to_their_own_company(owner, members):
    """E.g. an invitation sent before the address became a member's: it must not
    be spent (or change anything) by someone already in."""
    viewer = members[Role.VIEWER]
    invitation = Invitation.objects.create(
        company=owner.company,
        email=viewer.user.email,
        role=Role.ADMIN,
        token_hash="c" * 64,
        invited_by=owner.user,
        expires_at=timezone.now() + timedelta(days=1),
    )
    with pytest.raises(invitations.InvitationError, match="already a member"):
        invitations.accept(invitation, viewer.user)
    viewer.refresh_from_db()
    assert viewer.role == Role.VIEWER
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_a_parked_token_cannot_be_replayed_after_acceptance_by_another_session(owner, mailoutbox):
    """Two browsers opened the same link; the second cannot accept once the first did."""
    _, path = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    invitee = make_invitee("new@example.com")
    first, second = HTTPSClient(), HTTPSClient()
    for c in (first, second):
        c.get(path)
        c.force_login(invitee)
    assert first.post(reverse("invitation_accept")).status_code == 302
    assert second.post(reverse("invitation_accept")).status_code == 404
    assert Membership.objects.filter(user=invitee).count() == 1


def test_a_new_invitation_revokes_the_earlier_pending_one(client, owner, mailoutbox):
    old_token, old_path = send_invitation(owner, "new@example.com", Role.VIEWER, mailoutbox=mailoutbox)
    new_token, new_path = send_invitation(owner, "NEW@example.com", Role.ADMIN, mailoutbox=mailoutbox)
    old = Invitation.objects.get(token_hash=hashlib.sha256(old_token.encode()).hexdigest())
    new = Invitation.objects.get(token_hash=hashlib.sha256(new_token.encode()).hexdigest())
    assert old.revoked_at is not None
    assert new.is_pending
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 302
    # Other addresses' invitations are untouched.
    send_invitation(owner, "third@example.com", mailoutbox=mailoutbox)
    new.refresh_from_db()
    assert new.is_pending


def test_an_invitation_of_another_company_is_not_revoked(owner, mailoutbox):
    other = fast_company("Other Co")
    send_invitation(other.memberships.get(), "new@example.com", mailoutbox=mailoutbox)
    send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    assert Invitation.objects.get(company=other).is_pending
    assert Invitation.objects.get(company=owner.company).is_pending


def test_revoked_invitation_link_stops_working(client, owner, mailoutbox):
    _, path = send_invitation(owner, "new@example.com", mailoutbox=mailoutbox)
    client.get(path)  # parked before the revocation
    admin = HTTPSClient()
    admin.force_login(owner.user)
    invitation = Invitation.objects.get()
    assert admin.post(reverse("invitation_revoke", args=[invitation.pk])).status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    client.force_login(make_invitee("new@example.com"))
    assert client.post(reverse("invitation_accept")).status_code == 404
    assert client.get(path).status_code == 404


def test_existing_user_logs_in_then_accepts_and_the_company_becomes_current(client, owner, mailoutbox):
    # The invitee already works in another company, which is their current one.
    invitee = make_user("existing@example.com")  # with a real password: the login is under test
    elsewhere = fast_company("Aardvark Ltd", owner=invitee)
    _, path = send_invitation(owner, "existing@example.com", Role.ADMIN, mailoutbox=mailoutbox)

    welcome = client.get(client.get(path)["Location"])
    assert welcome.status_code == 200
    assert b"I already have an account" in welcome.content

    login = client.post(
        reverse("account_login") + "?next=" + reverse("invitation_accept"),
        {"login": "existing@example.com", "password": PASSWORD},
    )
    assert login.status_code == 302
    assert login["Location"] == reverse("invitation_accept")
    page = client.get(login["Location"])  # the invitation survived the session rotation at login
    assert page.status_code == 200
    assert b"Accept invitation" in page.content

    response = client.post(reverse("invitation_accept"))
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    membership = Membership.objects.get(user=invitee, company=owner.company)
    assert membership.role == Role.ADMIN and membership.is_active
    assert client.session[SESSION_COMPANY_KEY] == str(owner.company_id)
    dashboard = client.get(reverse("dashboard"))
    assert b"<h1>Acme Hiring</h1>" in dashboard.content
    # Still a member of their first company.
    assert Membership.objects.get(user=invitee, company=elsewhere).is_active


def test_a_deactivated_member_reinvited_is_not_let_back_by_the_invitation_service(client, members, mailoutbox):
    """Re-inviting a deactivated member is refused (reactivation is the way back)."""
    viewer = members[Role.VIEWER]
    viewer.is_active = False
    viewer.save()
    client.force_login(members[Role.OWNER].user)
    response = client.post(
        reverse("member_invite"), {"email": viewer.user.email, "role": str(int(Role.ADMIN))}, follow=True
    )
    assert b"already a member" in response.content
    assert not Invitation.objects.exists()


# Signing up through an invitation ----------------------------------------------------------------


def _signup(client, email: str, **extra):
    data = {"full_name": "Nora Newcomer", "email": email, "password1": PASSWORD, "password2": PASSWORD}
    data.update(extra)
    return client.post(reverse("account_signup"), data)


def test_new_person_signs_up_through_the_invitation(client, owner, mailoutbox):
    _, path = send_invitation(owner, "nora@example.com", Role.VIEWER, mailoutbox=mailoutbox)
    companies_before = Company.objects.count()
    mails_before = len(mailoutbox)

    client.get(path)
    form_page = client.get(reverse("account_signup"))
    assert form_page.status_code == 200
    assert b'name="company_name"' not in form_page.content
    assert b'name="region"' not in form_page.content

    response = _signup(client, "nora@example.com")
    assert response.status_code == 302, response.content[:2000]

    user = User.objects.get(email="nora@example.com")
    assert user.full_name == "Nora Newcomer"
    assert user.has_usable_password()
    membership = Membership.objects.get(user=user)
    assert membership.company == owner.company
    assert membership.role == Role.VIEWER
    assert Company.objects.count() == companies_before
    assert Invitation.objects.get().accepted_at is not None

    # Verified by following the emailed link: no separate verification email.
    from allauth.account.models import EmailAddress

    assert EmailAddress.objects.get(user=user).verified
    assert len(mailoutbox) == mails_before
    # And signed in, in the company.
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert b"<h1>Acme Hiring</h1>" in dashboard.content
    assert dashboard.context["user"] == user


def test_signup_through_an_invitation_with_another_address_does_not_join(client, owner, mailoutbox):
    """The invitation is for nora@; signing up as mallory@ in the same browser must not
    join the company, must not mark mallory@ verified, and must not crash."""
    _, path = send_invitation(owner, "nora@example.com", Role.ADMIN, mailoutbox=mailoutbox)
    client.get(path)
    users_before = User.objects.count()
    response = _signup(client, "mallory@example.com")
    assert response.status_code == 200
    assert b"the invitation was sent to" in response.content
    assert User.objects.count() == users_before
    assert not Membership.objects.filter(company=owner.company, user__email="mallory@example.com").exists()
    assert Invitation.objects.get().accepted_at is None
    from allauth.account.models import EmailAddress

    assert not EmailAddress.objects.filter(email="mallory@example.com", verified=True).exists()
    assert client.get(reverse("dashboard")).status_code == 302


def test_an_invitation_whose_email_cannot_be_sent_says_so(owner, mailoutbox):
    """The mail server refuses the connection: the owner is told, not shown a server
    error, and inviting again (once mail works) sends a new invitation."""
    import socket

    from django.test import override_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: connections are refused
    inviter = HTTPSClient()
    inviter.force_login(owner.user)
    smtp = {"EMAIL_BACKEND": "vouch.outbox.backends.SMTPBackend", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port}
    with override_settings(**smtp, EMAIL_USE_TLS=False, EMAIL_TIMEOUT=5):
        response = inviter.post(reverse("member_invite"), {"email": "lost@example.com", "role": str(int(Role.VIEWER))})
    assert response.status_code == 302
    page = inviter.get(response["Location"]).content.decode()
    assert "The invitation to lost@example.com is saved, but the mail server did not take its email" in page
    kept = QueuedMail.objects.get(sent_at__isnull=True)  # the worker sends it once mail is back
    assert kept.kind == "accounts/email/invitation"
    token, _ = send_invitation(owner, "lost@example.com", Role.VIEWER, mailoutbox=mailoutbox)
    assert token
