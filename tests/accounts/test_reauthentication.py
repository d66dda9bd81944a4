"""Re-authentication before changes to who can access what (issue 6, P19/P20): role
changes, deactivation and reactivation, invitations. Without a recent password
confirmation nothing changes and the person is sent to allauth's page; the right
password replays the held-back POST; a wrong one does not; htmx gets HX-Redirect.

These users have real passwords: allauth skips re-authentication for an account with
no usable password (none exist in Vouch), so the passwordless ``fast_user`` would
prove nothing here."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from allauth.account import app_settings as account_settings
from django.urls import reverse

from tests.accounts.helpers import mark_reauthenticated
from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent

pytestmark = pytest.mark.django_db

REAUTH = "/accounts/reauthenticate/"


@pytest.fixture
def team():
    owner_user = make_user()
    company = make_company("Careful Hiring", owner=owner_user)
    owner = company.memberships.get(role=Role.OWNER)
    admin = add_member(company, Role.ADMIN)
    viewer = add_member(company, Role.VIEWER)
    return company, owner, admin, viewer


def signed_in(user) -> HTTPSClient:
    """Through allauth's login view, as a person would: a fresh sign-in."""
    client = HTTPSClient()
    assert client.post("/accounts/login/", {"login": user.email, "password": PASSWORD}).status_code == 302
    return client


def role_post(client, target: Membership, role: Role, **extra):
    return client.post(reverse("member_role", args=[target.pk]), {f"m{target.pk}-role": str(int(role))}, **extra)


def role_of(membership: Membership) -> int:
    return Membership.objects.get(pk=membership.pk).role


def changes() -> int:
    return SecurityEvent.objects.filter(action=EventAction.PRIVILEGE_PERMISSIONS_CHANGED).count()


def assert_sent_to_reauthenticate(response, path: str) -> str:
    assert response.status_code == 302, response.status_code
    location = urlsplit(response["Location"])
    assert location.path == REAUTH
    assert location.query == f"next={path.replace('/', '%2F')}"
    return response["Location"]


def test_a_fresh_sign_in_is_not_a_confirmation_and_nothing_changes(team):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    url = reverse("member_role", args=[viewer.pk])
    response = role_post(client, viewer, Role.ADMIN)
    assert_sent_to_reauthenticate(response, url)
    assert role_of(viewer) == Role.VIEWER
    assert changes() == 0


def test_the_right_password_replays_the_held_back_role_change(team, mailoutbox):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    url = reverse("member_role", args=[viewer.pk])
    location = assert_sent_to_reauthenticate(role_post(client, viewer, Role.RECRUITER), url)
    assert client.get(location).status_code == 200  # the page asks for the password

    response = client.post(location, {"password": PASSWORD})
    # allauth replayed the stored POST: the view's own answer, the change made once.
    assert response.status_code == 302 and response["Location"] == reverse("members")
    assert role_of(viewer) == Role.RECRUITER
    assert changes() == 1
    assert "is now Recruiter" in client.get(reverse("members")).content.decode()
    # Within the window, the next change goes straight through.
    assert role_post(client, viewer, Role.VIEWER).status_code == 302
    assert role_of(viewer) == Role.VIEWER and changes() == 2


def test_a_wrong_password_does_not_apply_the_held_back_change(team):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    location = assert_sent_to_reauthenticate(
        role_post(client, viewer, Role.ADMIN), reverse("member_role", args=[viewer.pk])
    )
    for wrong in ("not the password at all", "", PASSWORD.upper()):
        response = client.post(location, {"password": wrong})
        assert response.status_code == 200
        assert role_of(viewer) == Role.VIEWER
    assert changes() == 0
    # Still not confirmed: a new attempt is held back again.
    assert role_post(client, viewer, Role.ADMIN).status_code == 302
    assert role_of(viewer) == Role.VIEWER


def test_the_stored_post_is_not_replayed_for_another_next(team):
    """The held-back change runs only on its own path: a forged ``next`` just redirects."""
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    role_post(client, viewer, Role.ADMIN)
    response = client.post(f"{REAUTH}?next=/members/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/members/"
    assert role_of(viewer) == Role.VIEWER and changes() == 0


def test_an_old_confirmation_has_expired(team):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    mark_reauthenticated(client)
    session = client.session
    records = session["account_authentication_methods"]
    records[-1]["at"] = time.time() - account_settings.REAUTHENTICATION_TIMEOUT - 1
    session["account_authentication_methods"] = records
    session.save()
    assert_sent_to_reauthenticate(role_post(client, viewer, Role.ADMIN), reverse("member_role", args=[viewer.pk]))
    assert role_of(viewer) == Role.VIEWER


def test_htmx_gets_hx_redirect_and_the_change_is_replayed_after_the_password(team):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    url = reverse("member_role", args=[viewer.pk])
    response = role_post(client, viewer, Role.RECRUITER, headers={"HX-Request": "true"})
    # Not a 302: XHR would follow it and swap the password page into the members table.
    assert response.status_code == 200
    assert response.content == b""
    location = response["HX-Redirect"]
    assert urlsplit(location).path == REAUTH and urlsplit(location).query == f"next={url.replace('/', '%2F')}"
    assert role_of(viewer) == Role.VIEWER and changes() == 0

    response = client.post(location, {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("members")
    assert role_of(viewer) == Role.RECRUITER and changes() == 1


def test_htmx_within_the_window_goes_straight_through(team):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    mark_reauthenticated(client)
    response = role_post(client, viewer, Role.RECRUITER, headers={"HX-Request": "true"})
    assert response.status_code == 302 and "HX-Redirect" not in response
    assert role_of(viewer) == Role.RECRUITER


def test_deactivation_and_reactivation_ask_for_the_password(team):
    company, owner, admin, viewer = team
    client = signed_in(owner.user)
    url = reverse("member_active", args=[viewer.pk])
    location = assert_sent_to_reauthenticate(client.post(url, {"active": "0"}), url)
    assert Membership.objects.get(pk=viewer.pk).is_active
    assert client.post(location, {"password": "wrong password 12345"}).status_code == 200
    assert Membership.objects.get(pk=viewer.pk).is_active
    assert client.post(location, {"password": PASSWORD}).status_code == 302
    assert not Membership.objects.get(pk=viewer.pk).is_active

    # Reactivating lets a person back in: asked for again once the window has gone.
    other = signed_in(owner.user)
    assert_sent_to_reauthenticate(other.post(url, {"active": "1"}), url)
    assert not Membership.objects.get(pk=viewer.pk).is_active


def test_an_invitation_asks_for_the_password_before_anything_is_sent(team, mailoutbox):
    company, owner, admin, viewer = team
    client = signed_in(admin.user)
    url = reverse("member_invite")
    data = {"email": "new.admin@example.com", "role": str(int(Role.ADMIN))}
    location = assert_sent_to_reauthenticate(client.post(url, data), url)
    invited = lambda: [m for m in mailoutbox if "new.admin@example.com" in m.to]  # noqa: E731
    assert not Invitation.objects.filter(company=company).exists() and invited() == []
    assert client.post(location, {"password": PASSWORD}).status_code == 302
    assert Invitation.objects.get(company=company).email == "new.admin@example.com"
    assert len(invited()) == 1


def test_what_the_policy_refuses_is_refused_before_any_password_prompt(team):
    """A 403 or 404 at once: the prompt must not suggest the change is possible, and an
    id probe is still answered (and recorded) as a miss."""
    company, owner, admin, viewer = team
    client = signed_in(admin.user)
    assert role_post(client, owner, Role.VIEWER).status_code == 403
    assert client.post(reverse("member_active", args=[owner.pk]), {"active": "0"}).status_code == 403
    elsewhere = add_member(make_company(owner=make_user()), Role.VIEWER)
    assert role_post(client, elsewhere, Role.ADMIN).status_code == 404
    assert client.post(reverse("member_active", args=[elsewhere.pk]), {"active": "0"}).status_code == 404
    viewer_client = signed_in(viewer.user)
    assert role_post(viewer_client, admin, Role.VIEWER).status_code == 403
    assert role_of(owner) == Role.OWNER and role_of(elsewhere) == Role.VIEWER and role_of(admin) == Role.ADMIN
    # Nothing was held back for replay either.
    assert "account_reauthentication_state" not in client.session
    assert "account_reauthentication_state" not in viewer_client.session
