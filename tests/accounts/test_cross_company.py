"""Attacks from one company on another (P6, P20): ids of the other company's rows,
switching into a company one does not belong to, forging the session's company."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_member
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Role
from vouch.tenancy.services import SESSION_COMPANY_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def company_b(db):
    company = fast_company("Bravo Corp")
    fast_member(company, Role.ADMIN)
    fast_member(company, Role.VIEWER)
    Invitation.objects.create(
        company=company,
        email="bravo-invitee@example.com",
        role=Role.RECRUITER,
        token_hash="b" * 64,
        expires_at="2999-01-01T00:00:00Z",
    )
    return company


def rows_of(company):
    return (
        sorted(Membership.objects.filter(company=company).values_list("pk", "user_id", "role", "is_active")),
        sorted(Invitation.objects.filter(company=company).values_list("pk", "revoked_at", "accepted_at")),
    )


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN], ids=["owner", "admin"])
def test_member_ids_of_another_company_are_404(client, members, company_b, role):
    client.force_login(members[role].user)
    before = rows_of(company_b)
    for target in Membership.objects.filter(company=company_b):
        url = reverse("member_role", args=[target.pk])
        for new_role in (Role.VIEWER, Role.ADMIN):
            response = client.post(url, {f"m{target.pk}-role": str(new_role)})
            assert response.status_code == 404, (target, new_role)
        response = client.post(reverse("member_active", args=[target.pk]), {"active": "0"})
        assert response.status_code == 404, target
    assert rows_of(company_b) == before


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN], ids=["owner", "admin"])
def test_invitation_ids_of_another_company_are_404(client, members, company_b, role):
    client.force_login(members[role].user)
    before = rows_of(company_b)
    for invitation in Invitation.objects.filter(company=company_b):
        response = client.post(reverse("invitation_revoke", args=[invitation.pk]))
        assert response.status_code == 404
    assert rows_of(company_b) == before
    assert Invitation.objects.get(company=company_b).is_pending


def test_owner_of_both_companies_still_acts_only_in_the_current_one(client, members, company_b):
    """Being owner of B too does not make B's rows reachable while A is current."""
    owner_a = members[Role.OWNER]
    fast_member(company_b, Role.OWNER, user=owner_a.user)
    client.force_login(owner_a.user)
    session = client.session
    session[SESSION_COMPANY_KEY] = str(owner_a.company_id)
    session.save()
    before = rows_of(company_b)
    victim = Membership.objects.get(company=company_b, role=Role.VIEWER)
    assert client.post(reverse("member_active", args=[victim.pk]), {"active": "0"}).status_code == 404
    response = client.post(reverse("member_role", args=[victim.pk]), {f"m{victim.pk}-role": "30"})
    assert response.status_code == 404
    invitation = Invitation.objects.get(company=company_b)
    assert client.post(reverse("invitation_revoke", args=[invitation.pk])).status_code == 404
    assert rows_of(company_b) == before


def test_nonexistent_ids_are_404(client, owner):
    client.force_login(owner.user)
    assert client.post(reverse("member_role", args=[987654]), {"m987654-role": "10"}).status_code == 404
    assert client.post(reverse("member_active", args=[987654]), {"active": "0"}).status_code == 404
    assert client.post(reverse("invitation_revoke", args=[987654])).status_code == 404


def _current_company_name(client) -> bytes:
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    start = response.content.index(b"<h1>") + 4
    return response.content[start : response.content.index(b"</h1>", start)]


@pytest.mark.parametrize(
    "value",
    ["company_b", "random_uuid", "garbage", "empty", "sql", "missing"],
)
def test_switching_to_a_company_you_do_not_belong_to_is_404(client, owner, company_b, value):
    client.force_login(owner.user)
    assert _current_company_name(client) == b"Acme Hiring"
    data = {
        "company_b": {"company": str(company_b.pk)},
        "random_uuid": {"company": str(uuid.uuid4())},
        "garbage": {"company": "not-a-uuid"},
        "empty": {"company": ""},
        "sql": {"company": "' OR '1'='1"},
        "missing": {},
    }[value]
    response = client.post(reverse("company_switch"), data)
    assert response.status_code == 404
    assert client.session[SESSION_COMPANY_KEY] == str(owner.company_id)
    assert _current_company_name(client) == b"Acme Hiring"


def test_switch_into_a_deactivated_membership_is_404(client, owner, company_b):
    membership = fast_member(company_b, Role.ADMIN, user=owner.user)
    membership.is_active = False
    membership.save()
    client.force_login(owner.user)
    assert client.post(reverse("company_switch"), {"company": str(company_b.pk)}).status_code == 404
    assert _current_company_name(client) == b"Acme Hiring"


def test_switch_into_an_inactive_company_is_404(client, owner, company_b):
    fast_member(company_b, Role.ADMIN, user=owner.user)
    company_b.is_active = False
    company_b.save()
    client.force_login(owner.user)
    assert client.post(reverse("company_switch"), {"company": str(company_b.pk)}).status_code == 404
    assert _current_company_name(client) == b"Acme Hiring"


def test_switch_by_get_does_nothing(client, owner, company_b):
    fast_member(company_b, Role.VIEWER, user=owner.user)
    client.force_login(owner.user)
    _current_company_name(client)
    response = client.get(reverse("company_switch"), {"company": str(company_b.pk)})
    assert response.status_code == 405
    assert _current_company_name(client) == b"Acme Hiring"


def test_anonymous_switch_is_sent_to_login(client, company_b):
    response = client.post(reverse("company_switch"), {"company": str(company_b.pk)})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("forged", ["company_b", "random_uuid", "garbage"])
def test_forged_session_company_fails_closed(client, members, company_b, forged):
    owner = members[Role.OWNER]
    client.force_login(owner.user)
    session = client.session
    session[SESSION_COMPANY_KEY] = {
        "company_b": str(company_b.pk),
        "random_uuid": str(uuid.uuid4()),
        "garbage": "'; DROP TABLE tenancy_company; --",
    }[forged]
    session.save()
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert b"<h1>Acme Hiring</h1>" in response.content
    assert b"Bravo Corp" not in response.content
    # The members page is A's too, and B's people are nowhere on it.
    page = client.get(reverse("members"))
    assert b"Members of Acme Hiring" in page.content
    for m in Membership.objects.filter(company=company_b).select_related("user"):
        assert m.user.email.encode() not in page.content
    # And the session now names A again.
    assert client.session[SESSION_COMPANY_KEY] == str(owner.company_id)


def test_session_company_control(client, owner):
    """Control for the forgery tests: the session's company is honoured when it is one
    of the user's own (so those tests do reach the choice they attack)."""
    zulu = fast_company("Zulu Staffing")
    fast_member(zulu, Role.VIEWER, user=owner.user)
    client.force_login(owner.user)
    session = client.session
    session[SESSION_COMPANY_KEY] = str(zulu.pk)
    session.save()
    assert _current_company_name(client) == b"Zulu Staffing"
