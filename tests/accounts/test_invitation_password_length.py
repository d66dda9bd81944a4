"""A company's own minimum password length when people join it by invitation (issue 6,
section 6): a new account is refused a shorter password with a clear error; an existing
account keeps its password, is told of the minimum on the accept page, and meets it
at its next password change."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.accounts.helpers import fast_company, mark_reauthenticated
from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.accounts.models import Invitation, Membership, User
from vouch.accounts.policy import Role
from vouch.guard.models import CompanySecuritySettings

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https://[^\s/]+(/invitations/[A-Za-z0-9_\-]+/)")
SHORT = "purple monkey dishwasher 7"  # 26 characters: above the installation's 12
LONG = "purple monkey dishwasher under the stairs 7"  # 43


@pytest.fixture
def strict_company(db):
    company = fast_company("Strict Staffing")
    CompanySecuritySettings.objects.create(company=company, min_password_length=30)
    return company


def invite(company, email: str, mailoutbox) -> str:
    inviter = HTTPSClient()
    inviter.force_login(company.memberships.get(role=Role.OWNER).user)
    mark_reauthenticated(inviter)
    assert inviter.post(reverse("member_invite"), {"email": email, "role": str(int(Role.RECRUITER))}).status_code == 302
    return LINK.search(mailoutbox[-1].body).group(1)


def sign_up(client, email: str, password: str):
    data = {"full_name": "Nia Newcomer", "email": email, "password1": password, "password2": password}
    return client.post(reverse("account_signup"), data)


def test_a_password_shorter_than_the_companys_minimum_is_refused_at_signup(client, strict_company, mailoutbox):
    client.get(invite(strict_company, "nia@example.com", mailoutbox))
    response = sign_up(client, "nia@example.com", SHORT)
    assert response.status_code == 200
    errors = response.context["form"].errors["password1"]
    assert errors == ["Strict Staffing requires passwords of at least 30 characters (this one has 26)."]
    assert "Strict Staffing requires passwords of at least 30 characters" in response.content.decode()
    assert not User.objects.filter(email="nia@example.com").exists()
    assert Invitation.objects.get(company=strict_company).accepted_at is None

    # The same person with a long enough password joins.
    response = sign_up(client, "nia@example.com", LONG)
    assert response.status_code == 302, response.content[:1000]
    user = User.objects.get(email="nia@example.com")
    assert Membership.objects.get(user=user).company == strict_company


def test_exactly_the_minimum_is_enough(client, strict_company, mailoutbox):
    client.get(invite(strict_company, "edge@example.com", mailoutbox))
    password = "x7 purple monkey dishwasher 30"
    assert len(password) == 30
    assert sign_up(client, "edge@example.com", password).status_code == 302
    assert User.objects.filter(email="edge@example.com").exists()


def test_a_company_without_its_own_minimum_keeps_the_installations(client, mailoutbox):
    company = fast_company("Relaxed Recruiting")
    client.get(invite(company, "rae@example.com", mailoutbox))
    assert sign_up(client, "rae@example.com", SHORT).status_code == 302
    # Below the installation's minimum (12) is still refused, by Django's validator.
    other = HTTPSClient()
    other.get(invite(company, "tiny@example.com", mailoutbox))
    response = sign_up(other, "tiny@example.com", "Sh0rt!x")
    assert response.status_code == 200 and "password1" in response.context["form"].errors
    assert not User.objects.filter(email="tiny@example.com").exists()


def test_an_existing_account_is_told_and_meets_the_minimum_at_its_next_password_change(
    client, strict_company, mailoutbox
):
    person = make_user("existing@example.com")  # PASSWORD is 31 characters; make it shorter
    person.set_password(SHORT)
    person.save()
    path = invite(strict_company, "existing@example.com", mailoutbox)
    client.get(path)
    assert client.post("/accounts/login/", {"login": person.email, "password": SHORT}).status_code == 302
    page = client.get(reverse("invitation_accept")).content.decode()
    assert 'id="password-minimum"' in page and "at least 30" in page
    assert client.post(reverse("invitation_accept")).status_code == 302
    assert Membership.objects.get(user=person, company=strict_company).is_active

    # Their next password change must meet the company's minimum.
    mark_reauthenticated(client)
    change = {"oldpassword": SHORT, "password1": PASSWORD, "password2": PASSWORD}  # 31: long enough
    too_short = dict(change, password1="another short one 12", password2="another short one 12")
    response = client.post(reverse("account_change_password"), too_short)
    assert response.status_code == 200
    assert "requires passwords of at least 30 characters" in response.content.decode()
    person.refresh_from_db()
    assert person.check_password(SHORT)
    assert client.post(reverse("account_change_password"), change).status_code == 302
    person.refresh_from_db()
    assert person.check_password(PASSWORD)


def test_no_notice_where_the_company_has_no_minimum_of_its_own(client, mailoutbox):
    company = fast_company("Plain Partners")
    make_user("plain@example.com")
    client.get(invite(company, "plain@example.com", mailoutbox))
    client.post("/accounts/login/", {"login": "plain@example.com", "password": PASSWORD})
    page = client.get(reverse("invitation_accept")).content.decode()
    assert "Accept invitation" in page and 'id="password-minimum"' not in page
