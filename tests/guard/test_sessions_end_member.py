"""Owners and admins sign a member of their company out everywhere; operators any
account (ASVS 7.4.5). After confirming their own password; recorded as a security event;
the member is told by email. Viewers and recruiters cannot, an admin cannot end an
owner's sessions, and another company's member is a 404."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from tests.guard.b_helpers import give_totp, sign_in
from vouch.accounts.models import User
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent

pytestmark = pytest.mark.django_db
REAUTH = "/accounts/reauthenticate/"
SUBJECT = "[Vouch] You were signed out of Vouch"


@pytest.fixture
def team():
    company = make_company("Careful Hiring", owner=make_user(name="Olive Owner"))
    people = {Role.OWNER: company.memberships.get(role=Role.OWNER)}
    for role in (Role.ADMIN, Role.RECRUITER, Role.VIEWER):
        people[role] = add_member(company, role, make_user(name=f"{role.label} Person"))
    people["second_admin"] = add_member(company, Role.ADMIN, make_user(name="Other Admin"))
    return company, people


def signed_in(user) -> HTTPSClient:
    client = HTTPSClient()
    assert sign_in(client, user.email).status_code == 302
    return client


def live_sessions(user) -> int:
    return UserSession.objects.filter(user=user).count()


def revoked_events() -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(action=EventAction.SESSION_REVOKED))


def end(client: HTTPSClient, membership, *, confirm: bool = True):
    response = client.post(reverse("member_sessions_end", args=[membership.pk]))
    if confirm and response.status_code == 302 and response["Location"].startswith(REAUTH):
        return client.post(response["Location"], {"password": PASSWORD})
    return response


@pytest.mark.parametrize(
    ("actor", "target"),
    [(Role.OWNER, Role.ADMIN), (Role.OWNER, Role.VIEWER), (Role.ADMIN, Role.RECRUITER), (Role.ADMIN, "second_admin")],
    ids=["owner-admin", "owner-viewer", "admin-recruiter", "admin-admin"],
)
def test_owners_and_admins_sign_a_member_out_everywhere(team, actor, target):
    company, people = team
    target = people[target]
    victim_laptop, victim_phone = signed_in(target.user), signed_in(target.user)
    client = signed_in(people[actor].user)
    mail.outbox.clear()

    held_back = client.post(reverse("member_sessions_end", args=[target.pk]))
    # Nothing happens before the actor confirms their own password.
    assert held_back.status_code == 302 and held_back["Location"].startswith(REAUTH)
    assert live_sessions(target.user) == 2 and revoked_events() == []
    done = client.post(held_back["Location"], {"password": PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("members")

    assert live_sessions(target.user) == 0
    for browser in (victim_laptop, victim_phone):
        assert browser.get(reverse("dashboard")).status_code == 302  # signed out
    assert client.get(reverse("members")).status_code == 200  # the actor is not
    (event,) = revoked_events()
    assert event.company_id == company.pk and event.actor_id == people[actor].user_id
    assert event.target == f"membership:{target.pk}"
    assert event.details == {"user": f"user:{target.user_id}", "sessions": 2, "reason": "ended_by_admin"}
    (message,) = mail.outbox
    assert message.to == [target.user.email] and message.subject == SUBJECT
    by = people[actor]
    assert f"{by.user.full_name} ({by.get_role_display().lower()} of Careful Hiring)" in message.body
    assert "2 sessions ended" in message.body and "/accounts/password/reset/" in message.body


@pytest.mark.parametrize(
    ("actor", "target"),
    [
        (Role.VIEWER, Role.RECRUITER),
        (Role.RECRUITER, Role.VIEWER),
        (Role.ADMIN, Role.OWNER),
        (Role.OWNER, Role.OWNER),  # oneself: that is the sessions page
        (Role.VIEWER, Role.VIEWER),
    ],
    ids=["viewer", "recruiter", "admin-owner", "self", "viewer-self"],
)
def test_refused_roles_end_nothing_and_are_not_asked_for_a_password(team, actor, target):
    company, people = team
    target = people[target]
    signed_in(target.user)
    client = signed_in(people[actor].user)
    before = live_sessions(target.user)
    response = end(client, target, confirm=False)
    assert response.status_code == 403
    assert live_sessions(target.user) == before and revoked_events() == []


def test_the_refusal_holds_after_a_password_confirmation_too(team):
    """An admin who just confirmed their password (for something else) still cannot."""
    company, people = team
    owner = people[Role.OWNER]
    signed_in(owner.user)
    client = signed_in(people[Role.ADMIN].user)
    assert client.post(REAUTH, {"password": PASSWORD}).status_code == 302
    assert end(client, owner).status_code == 403
    assert live_sessions(owner.user) == 1 and revoked_events() == []


def test_another_companys_member_is_a_404(team):
    company, people = team
    outsider = make_company("Rival Hiring", owner=make_user()).memberships.get()
    victim = people[Role.VIEWER]
    signed_in(victim.user)
    client = signed_in(outsider.user)
    assert client.post(REAUTH, {"password": PASSWORD}).status_code == 302
    response = end(client, victim)
    assert response.status_code == 404
    assert live_sessions(victim.user) == 1
    assert not SecurityEvent.objects.filter(action=EventAction.SESSION_REVOKED).exists()


def test_the_members_page_offers_the_control_only_where_allowed(team):
    company, people = team
    url = reverse("members")

    def offered(role) -> set[int]:
        page = signed_in(people[role].user).get(url).content.decode()
        return {m.pk for m in people.values() if reverse("member_sessions_end", args=[m.pk]) in page}

    everyone_but = {key: {m.pk for k, m in people.items() if k != key} for key in people}
    assert offered(Role.OWNER) == everyone_but[Role.OWNER]
    assert offered(Role.ADMIN) == everyone_but[Role.ADMIN] - {people[Role.OWNER].pk}
    assert offered(Role.RECRUITER) == set() and offered(Role.VIEWER) == set()


def test_an_operator_signs_any_account_out_everywhere(team):
    company, people = team
    target = people[Role.OWNER].user
    signed_in(target)
    signed_in(target)
    operator = User.objects.create_operator("operator@example.com", full_name="Ops")
    operator.set_password(PASSWORD)
    operator.save()
    EmailAddress.objects.create(user=operator, email=operator.email, primary=True, verified=True)
    client = signed_in(operator)
    give_totp(operator)  # operators act only with two-factor (P15)
    mail.outbox.clear()

    held_back = client.post(reverse("operator_sessions_end"), {"email": target.email.upper()})
    assert held_back["Location"].startswith(REAUTH) and live_sessions(target) == 2
    assert client.post(held_back["Location"], {"password": PASSWORD}).status_code == 302
    assert live_sessions(target) == 0
    (event,) = revoked_events()
    assert event.company_id is None and event.actor_id == operator.pk and event.target == f"user:{target.pk}"
    assert event.details == {"sessions": 2, "reason": "ended_by_operator"}
    (message,) = mail.outbox
    assert message.to == [target.email] and "An operator of this Vouch installation" in message.body
    # An unknown address: said plainly, nothing recorded.
    response = client.post(reverse("operator_sessions_end"), {"email": "nobody@example.com"}, follow=True)
    assert response.status_code == 200 and b"No account has that email address." in response.content
    assert len(revoked_events()) == 1


def test_members_cannot_use_the_operator_control(team):
    company, people = team
    victim = people[Role.VIEWER].user
    signed_in(victim)
    client = signed_in(people[Role.OWNER].user)
    assert client.post(REAUTH, {"password": PASSWORD}).status_code == 302
    assert client.post(reverse("operator_sessions_end"), {"email": victim.email}).status_code == 403
    assert live_sessions(victim) == 1 and revoked_events() == []
