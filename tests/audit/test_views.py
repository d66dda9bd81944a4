"""The security event pages: who may see them, and only their own company's events."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member, fast_user
from tests.guard.b_helpers import give_totp
from vouch.accounts.models import User
from vouch.accounts.policy import Role
from vouch.audit import record
from vouch.audit.filters import PER_PAGE
from vouch.audit.models import EventAction, Outcome

pytestmark = pytest.mark.django_db


def rows(response) -> int:
    return response.content.count(b'<tr id="event-')


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
def test_role_page_matrix(client, members, role):
    client.force_login(members[role].user)
    response = client.get("/security/events/")
    expected = 200 if role >= Role.ADMIN else 403
    assert response.status_code == expected
    nav = b'href="/security/events/"'
    page = client.get("/dashboard/").content
    assert (nav in page) == (role >= Role.ADMIN)


def test_anonymous_is_sent_to_login(client):
    assert client.get("/security/events/").status_code == 302
    assert client.get("/operator/events/").status_code == 302


def test_empty_state(client, owner):
    client.force_login(owner.user)
    response = client.get("/security/events/")
    assert response.status_code == 200
    assert b"No security events" in response.content
    assert rows(response) == 0


def test_an_admin_never_sees_another_companys_events(client, members, company):
    other = fast_company("Other Co")
    mine = record(EventAction.PRIVILEGE_PERMISSIONS_CHANGED, company=company, target="membership:mine")
    theirs = record(EventAction.PRIVILEGE_PERMISSIONS_CHANGED, company=other, target="membership:SECRET-THEIRS")
    platform = record(EventAction.AUTHN_LOGIN_FAIL, target="user:PLATFORM-ONLY", outcome=Outcome.FAILURE)
    client.force_login(members[Role.ADMIN].user)
    attempts = [
        "",
        f"?company={other.pk}",
        f"?company_id={other.pk}",
        f"?action=privilege_permissions_changed&company={other.pk}",
        f"?actor={theirs.pk}",
        "?page=2",
    ]
    for query in attempts:
        response = client.get("/security/events/" + query)
        assert response.status_code < 500
        assert b"SECRET-THEIRS" not in response.content, query
        assert b"PLATFORM-ONLY" not in response.content, query
    assert f'id="event-{mine.seq}"'.encode() in client.get("/security/events/").content
    # Switching to a company one is not a member of does not widen it either.
    client.post("/companies/switch/", {"company": str(other.pk)})
    assert b"SECRET-THEIRS" not in client.get("/security/events/").content
    assert platform.company_id is None


def test_a_member_of_two_companies_sees_the_current_one_only(client, company, owner):
    other = fast_company("Second Co")
    fast_member(other, Role.ADMIN, user=owner.user)
    record(EventAction.MEMBER_DEACTIVATED, company=company, target="membership:FIRST")
    record(EventAction.MEMBER_DEACTIVATED, company=other, target="membership:SECOND")
    client.force_login(owner.user)
    client.post("/companies/switch/", {"company": str(company.pk)})
    page = client.get("/security/events/").content
    assert b"membership:FIRST" in page and b"membership:SECOND" not in page
    client.post("/companies/switch/", {"company": str(other.pk)})
    page = client.get("/security/events/").content
    assert b"membership:SECOND" in page and b"membership:FIRST" not in page


def test_pagination(client, owner, company):
    for i in range(PER_PAGE + 5):
        record(EventAction.AUTHZ_FAIL, company=company, target=f"route:r{i}", outcome=Outcome.BLOCKED)
    client.force_login(owner.user)
    first = client.get("/security/events/")
    assert rows(first) == PER_PAGE
    assert b"Page 1 of 2" in first.content and b"page=2" in first.content
    second = client.get("/security/events/?page=2&outcome=blocked")
    assert rows(second) == 5
    assert b"outcome=blocked&amp;page=1" in second.content
    # Newest first: the first page starts with the last event.
    assert b"route:r54" in first.content and b"route:r0<" not in first.content


def test_filters(client, owner, company):
    other_actor = fast_user()
    record(EventAction.AUTHZ_FAIL, company=company, actor=owner.user, target="route:a", outcome=Outcome.BLOCKED)
    record(EventAction.MEMBER_DEACTIVATED, company=company, actor=other_actor, target="membership:b")
    client.force_login(owner.user)
    assert rows(client.get("/security/events/?action=authz_fail")) == 1
    assert rows(client.get("/security/events/?outcome=success")) == 1
    assert rows(client.get(f"/security/events/?actor={owner.user.email.upper()}")) == 1
    assert rows(client.get(f"/security/events/?actor={other_actor.pk}")) == 1
    today = timezone.now().date()
    assert rows(client.get(f"/security/events/?date_from={today}&date_to={today}")) == 2
    assert rows(client.get(f"/security/events/?date_to={today - timedelta(days=1)}")) == 0
    assert rows(client.get(f"/security/events/?date_from={today + timedelta(days=1)}")) == 0


@pytest.mark.parametrize(
    "query",
    [
        "?date_from=yesterday",
        "?date_from=2024-13-45",
        "?date_to=99999-01-01",
        "?date_from=2025-02-01&date_to=2025-01-01",
        "?action=drop_table",
        "?outcome=%00",
        "?actor=" + "a" * 5000,
    ],
)
def test_bad_filters_are_a_4xx_never_a_500(client, owner, query):
    client.force_login(owner.user)
    response = client.get("/security/events/" + query)
    assert response.status_code == 400
    assert b"not valid" in response.content


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999999999999999", "1e9", "%F0%9F%92%A5", "2"])
def test_odd_page_numbers_give_a_clean_page(client, owner, company, page):
    record(EventAction.AUTHZ_FAIL, company=company, outcome=Outcome.BLOCKED)
    client.force_login(owner.user)
    response = client.get(f"/security/events/?page={page}")
    assert response.status_code == 200
    assert rows(response) == 1


def test_operators_see_platform_events_only(client, company):
    operator = User.objects.create_operator("ops@example.com")
    give_totp(operator)  # operators act only with two-factor (P15)
    record(EventAction.AUTHN_LOGIN_FAIL, target="user:PLATFORM-EVENT", outcome=Outcome.FAILURE)
    record(EventAction.MEMBER_DEACTIVATED, company=company, target="membership:COMPANY-EVENT")
    record(EventAction.MEMBER_DEACTIVATED, company=uuid.uuid4(), target="membership:GONE-COMPANY")
    client.force_login(operator)
    response = client.get("/operator/events/")
    assert response.status_code == 200
    assert b"PLATFORM-EVENT" in response.content
    assert b"COMPANY-EVENT" not in response.content and b"GONE-COMPANY" not in response.content
    assert b'href="/operator/events/"' in client.get("/operator/").content
    assert rows(client.get("/operator/events/?outcome=success")) == 0
    assert client.get("/operator/events/?date_from=garbage").status_code == 400
    # Operators have no company page, including the company event log: without a support
    # grant, the 404 anyone gets for a page that is not theirs (vouch.support).
    assert client.get("/security/events/").status_code == 404


def test_company_members_cannot_see_platform_events(client, members):
    for role in Role:
        client.force_login(members[role].user)
        assert client.get("/operator/events/").status_code == 403


def test_pages_carry_no_inline_script_or_style(client, owner, company):
    record(EventAction.AUTHZ_FAIL, company=company, outcome=Outcome.BLOCKED)
    client.force_login(owner.user)
    html = client.get("/security/events/").content.decode()
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert 'class="table"' in html and 'data-label="Action"' in html
