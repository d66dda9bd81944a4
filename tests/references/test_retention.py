"""Retention deletes exactly what it should: requests closed longer ago than the
company's period, with everything under them and their files on disk, and a
candidate left with no request; nothing open, nothing recent, nothing of another
company."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from tests.conftest import make_company
from tests.references.helpers import add_file, pdf_bytes
from tests.references.test_workflow_core import IDENTITY, answers_for
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.activity.services import Kind
from vouch.core.context import company_context
from vouch.links.models import Link
from vouch.references import jobs
from vouch.references.models import Attachment, Candidate, Reference, ReferenceRequest
from vouch.references.privacy import retention
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import (
    Flag,
    NamePrefix,
    ReportFile,
    SearchTerm,
    Severity,
    TimelineEvent,
    Touch,
    WorkflowSettings,
)
from vouch.references.requests import flows as request_flows

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _request(company, actor, email, name="Casey Candidate"):
    reference_request, _ = make_request(company, actor, email=email, name=name)
    return reference_request


def _with_everything(company, reference_request):
    """A referee who answered, a touch, a flag and a stored report: all that must go."""
    reference, _ = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        referee_flows.confirm_referee(reference, **IDENTITY)
        referee_flows.submit_answers(reference, answers_for(reference_request))
        Touch.objects.create(
            request=reference_request, reference=reference, actor="referee", action="open", ip="192.0.2.7"
        )
        Flag.objects.create(
            request=reference_request, reference=reference, kind="same_ip", key="same_ip:x", severity=Severity.HIGH,
            explanation="Same address as the candidate.",
        )  # fmt: skip
        report = ReportFile(request=reference_request, fingerprint="f" * 64, size=2000)
        report.file.save("report.pdf", ContentFile(pdf_bytes(2000)), save=False)
        report.save()
        return reference, report.file.storage.stored_path(report.file.name)


def _close(company, reference_request, *, months_ago: float, actor):
    with company_context(company):
        request_flows.cancel_request(reference_request, actor=actor)
        ReferenceRequest.objects.filter(pk=reference_request.pk).update(
            closed_at=NOW - timedelta(days=30.5 * months_ago)
        )


def test_requests_closed_longer_ago_than_the_period_go_with_everything_under_them(company, members):
    actor = members[Role.RECRUITER].user
    old = _request(company, actor, "old@example.org", "Olive Old")
    reference, report_path = _with_everything(company, old)
    with company_context(company):
        candidate = Candidate.objects.get(requests=old)
    attachment = add_file(company, candidate)
    with company_context(company):
        attachment_path = attachment.file.storage.stored_path(attachment.file.name)
    recent = _request(company, actor, "recent@example.org", "Rhea Recent")
    still_open = _request(company, actor, "open@example.org", "Otto Open")
    _close(company, old, months_ago=13, actor=actor)
    _close(company, recent, months_ago=11, actor=actor)
    with company_context(company):
        # Open for a long time (created long ago): never deleted while open.
        ReferenceRequest.objects.filter(pk=still_open.pk).update(created_at=NOW - timedelta(days=800))
    assert report_path.exists() and attachment_path.exists()
    assert Link.objects.filter(company=company, subject_id__in=[old.pk, reference.pk]).exists()

    counts = retention.apply(company, now=NOW)

    assert counts == {"requests": 1, "references": 1, "candidates": 1, "files": 2}
    with company_context(company):
        assert set(ReferenceRequest.objects.values_list("pk", flat=True)) == {recent.pk, still_open.pk}
        for model in (Reference, Touch, Flag, TimelineEvent, ReportFile):
            assert not model.objects.filter(request_id=old.pk).exists(), model
        assert not Candidate.objects.filter(pk=candidate.pk).exists()
        assert not Attachment.objects.filter(pk=attachment.pk).exists()
        assert not SearchTerm.objects.filter(candidate_id=candidate.pk).exists()
        assert not NamePrefix.objects.filter(candidate_id=candidate.pk).exists()
        assert Candidate.objects.count() == 2
        [entry] = Entry.objects.filter(action=Kind.RETENTION_DELETED)
        summary, details = entry.summary, entry.details
    assert not report_path.exists() and not attachment_path.exists()
    assert not Link.objects.filter(company=company, subject_id__in=[old.pk, reference.pk]).exists()
    assert Link.objects.filter(company=company, subject_id=recent.pk).exists()
    # Counts only: nothing in the log names the people deleted.
    assert details == {"requests": 1, "references": 1, "candidates": 1, "files": 2, "retention_months": 12}
    assert summary.startswith("1 request closed more than 12 months ago deleted")
    for name in ("Olive", "Old", "old@example.org", "Rita", "Head of Finance"):
        assert name not in summary and name not in str(details)

    # Idempotent: a second run finds nothing and logs nothing.
    assert retention.apply(company, now=NOW) == {"requests": 0, "references": 0, "candidates": 0, "files": 0}
    with company_context(company):
        assert Entry.objects.filter(action=Kind.RETENTION_DELETED).count() == 1


def test_a_candidate_with_another_request_is_kept(company, members):
    actor = members[Role.RECRUITER].user
    old = _request(company, actor, "same@example.org")
    newer = _request(company, actor, "same@example.org")
    assert old.candidate_id == newer.candidate_id
    _close(company, old, months_ago=20, actor=actor)
    assert retention.apply(company, now=NOW)["candidates"] == 0
    with company_context(company):
        assert Candidate.objects.filter(pk=old.candidate_id).exists()
        assert list(ReferenceRequest.objects.values_list("pk", flat=True)) == [newer.pk]
    # Once the other request is closed and old too, the candidate goes with it.
    _close(company, newer, months_ago=13, actor=actor)
    assert retention.apply(company, now=NOW)["candidates"] == 1
    with company_context(company):
        assert not Candidate.objects.exists()


def test_the_company_period_is_used_and_other_companies_are_untouched(company, members):
    actor = members[Role.RECRUITER].user
    other = make_company("Other Hiring")
    other_actor = other.memberships.get().user
    mine = _request(company, actor, "mine@example.org")
    theirs = _request(other, other_actor, "theirs@example.org")
    _close(company, mine, months_ago=4, actor=actor)
    _close(other, theirs, months_ago=4, actor=other_actor)
    with company_context(company):
        settings = WorkflowSettings.current()
        settings.retention_months = 3
        settings.save()
    assert retention.apply(company, now=NOW)["requests"] == 1
    assert retention.apply(other, now=NOW)["requests"] == 0  # their period is still 12 months
    with company_context(other):
        assert ReferenceRequest.objects.filter(pk=theirs.pk).exists()
    with company_context(company):
        assert not ReferenceRequest.objects.exists()


def test_completed_and_expired_requests_are_counted_from_when_they_closed(company, members):
    actor = members[Role.RECRUITER].user
    expired = _request(company, actor, "expired@example.org")
    with company_context(company):
        ReferenceRequest.objects.filter(pk=expired.pk).update(deadline=NOW - timedelta(days=1))
        assert request_flows.expire_request(ReferenceRequest.objects.get(pk=expired.pk))
    # Closed just now: kept, even though created long before the period.
    with company_context(company):
        ReferenceRequest.objects.filter(pk=expired.pk).update(created_at=NOW - timedelta(days=900))
    assert retention.apply(company, now=NOW)["requests"] == 0
    assert retention.apply(company, now=NOW + timedelta(days=370))["requests"] == 1


def test_the_daily_maintenance_applies_retention(company, members):
    actor = members[Role.RECRUITER].user
    old = _request(company, actor, "old@example.org")
    _close(company, old, months_ago=13, actor=actor)
    assert jobs.maintain_company(company, now=NOW)["requests"] == 1


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 3, 31, 12, tzinfo=UTC), 1, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 12, datetime(2025, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 13, datetime(2024, 12, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 12, datetime(2027, 2, 28, tzinfo=UTC)),
    ],
)
def test_months_are_calendar_months(moment, months, expected):
    assert retention.months_before(moment, months) == expected
