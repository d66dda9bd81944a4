"""Every company page (found by walking the URL configuration, as the role matrix does)
attacked by an operator: without a grant each is the 404 anyone gets; under a read-only
grant reading pages open as a viewer's, the rest are refused, and no write changes anything."""

from __future__ import annotations

import pytest

from tests.accounts.test_view_matrix import PROTECTED, ProtectedView, _request, _snapshot, _url, world  # noqa: F401
from tests.support.conftest import approve, ask, open_grant
from vouch.accounts.policy import MINIMUM_ROLE, Role
from vouch.audit.models import EventAction, Outcome, SecurityEvent

pytestmark = pytest.mark.django_db

READING = ("GET", "HEAD")


def _method(view: ProtectedView) -> str:
    return view.methods[0] if view.methods else "GET"


@pytest.mark.parametrize("view", PROTECTED, ids=str)
def test_without_a_grant_every_company_page_is_404(ops, company, world, view):  # noqa: F811
    before = _snapshot(company)
    response = _request(ops, view, _url(view, world))
    # The dashboard, where members land, sends an operator on to their own page.
    assert response.status_code == (302 if view.name == "dashboard" else 404), (view.name, response.status_code)
    assert _snapshot(company) == before
    assert not SecurityEvent.objects.filter(company_id=company.pk, action=EventAction.SUPPORT_PAGE_VIEWED).exists()


@pytest.mark.parametrize("view", PROTECTED, ids=str)
def test_under_a_read_only_grant_reading_only(ops, operator, company, members, world, view):  # noqa: F811
    open_grant(ops, approve(ask(operator, company), members[Role.OWNER].user))
    before = _snapshot(company)
    response = _request(ops, view, _url(view, world))
    if _method(view) not in READING:
        assert response.status_code == 403 and b"Read-only support access" in response.content, view.name
    elif MINIMUM_ROLE[view.action] <= Role.VIEWER:
        assert response.status_code in (200, 302, 404), (view.name, response.status_code)
    else:
        assert response.status_code == 403, (view.name, response.status_code)
    assert _snapshot(company) == before
    (event,) = SecurityEvent.objects.filter(company_id=company.pk, action=EventAction.SUPPORT_PAGE_VIEWED)
    assert event.target == f"route:{view.name}"
    blocked = _method(view) not in READING
    assert event.outcome == (Outcome.BLOCKED if blocked else Outcome.SUCCESS)
