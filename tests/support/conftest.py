"""Fixtures of the support-access tests: an operator with two-factor, a company with a
candidate, a file and a reference request, and grants in each state."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import HTTPSClient, make_user
from tests.guard.b_helpers import give_totp
from tests.references.helpers import add_candidate, add_file
from tests.references.workflow import make_request
from vouch.accounts.models import User
from vouch.accounts.policy import Role
from vouch.support import services
from vouch.support.access import SESSION_KEY
from vouch.support.models import Scope, SupportGrant

REASON = "Ticket 4411: the requests dashboard shows no requests since Monday"


@pytest.fixture
def operator(db) -> User:
    user = User.objects.create_operator("olive.ops@example.com", full_name="Olive Operator")
    give_totp(user)
    return user


@pytest.fixture
def ops(operator) -> HTTPSClient:
    """The operator's browser, signed in."""
    client = HTTPSClient()
    client.force_login(operator)
    return client


@pytest.fixture
def data(company, members):
    """What a company holds: a candidate with a file, a reference request."""
    candidate = add_candidate(company, name="Alice Example", email="alice@example.com")
    attachment = add_file(company, candidate)
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    return SimpleNamespace(candidate=candidate, attachment=attachment, request=reference_request)


def company_urls(data) -> dict[str, str]:
    """The company's pages with personal data: request list, candidate pages, files, reports."""
    candidate, request = data.candidate, data.request
    return {
        "requests": reverse("requests"),
        "request_detail": reverse("request_detail", args=[request.pk]),
        "request_report": reverse("request_report", args=[request.pk]),
        "request_report_pdf": reverse("request_report_pdf", args=[request.pk]),
        "candidates": reverse("candidates"),
        "candidate_detail": reverse("candidate_detail", args=[candidate.pk]),
        "attachment_download": reverse("attachment_download", args=[candidate.pk, data.attachment.pk]),
        "members": reverse("members"),
        "questionnaires": reverse("questionnaires"),
    }


def ask(operator: User, company, hours: int = 4) -> SupportGrant:
    return services.request_grant(None, operator, company, REASON, hours)


def approve(grant: SupportGrant, owner_user: User, hours: int = 4, scope: str = Scope.READ) -> SupportGrant:
    return services.approve(None, grant, owner_user, hours=hours, scope=scope)


def open_grant(client: HTTPSClient, grant: SupportGrant) -> None:
    """Puts the grant in the operator's session, as the Open button does (or as a forged
    session value would)."""
    session = client.session
    session[SESSION_KEY] = str(grant.pk)
    session.save()


class Later:
    """``timezone.now`` moved forward: the grant's clock, not the session's (which runs on
    time.time, so the operator stays signed in)."""

    def __init__(self, monkeypatch) -> None:
        self.offset = timedelta()
        real = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real() + self.offset)

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def later(monkeypatch) -> Later:
    return Later(monkeypatch)


def second_owner(company) -> User:
    from vouch.accounts.models import Membership

    user = make_user(name="Second Owner")
    Membership.objects.create(user=user, company=company, role=Role.OWNER)
    return user
