"""Retention: requests closed (completed, expired or cancelled) longer ago than the
company's ``WorkflowSettings.retention_months`` are deleted with everything under
them, and so is a candidate left with no request.

What goes: the request, its references (identities, answers, decline reasons), the
touches (addresses, devices), flags, the timeline, the report PDF (its encrypted file
too), every private link to the request or its referees (from the control
database's token index), and, when none of their requests remain, the candidate with
their search terms and attachments (files included). The activity log records counts
only: the entry outlives the people it is about.

Open requests are never deleted, however old; neither are candidates who still have
a request. Runs daily from the worker (``jobs.maintain_company``), and by hand with
``vouch references maintenance``."""

from __future__ import annotations

import calendar
import logging
from datetime import datetime

from django.db import router, transaction
from django.db.models import Count
from django.utils import timezone

from vouch.activity import services as activity
from vouch.activity.services import Kind
from vouch.core.context import company_context
from vouch.links.models import Link
from vouch.references.models import Candidate
from vouch.references.request_models import (
    CLOSED_REQUEST_STATUSES,
    Reference,
    ReferenceRequest,
    ReportFile,
    WorkflowSettings,
)

log = logging.getLogger("vouch.references.retention")

BATCH = 200


def months_before(moment: datetime, months: int) -> datetime:
    """The same time ``months`` calendar months earlier (the 31st becomes the last day
    of a shorter month)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def cutoff(*, now: datetime | None = None) -> datetime:
    """Requests closed before this moment are past the company's retention period."""
    return months_before(now or timezone.now(), WorkflowSettings.current().retention_months)


def due(*, now: datetime | None = None):
    """The current company's requests past their retention period."""
    return ReferenceRequest.objects.filter(status__in=CLOSED_REQUEST_STATUSES, closed_at__lt=cutoff(now=now))


def _remove_after_commit(remove, using: str) -> None:
    transaction.on_commit(remove, using=using, robust=True)


def _delete_batch(company, request_ids: list, candidate_ids: set, counts: dict) -> None:
    reference_ids = list(Reference.objects.filter(request_id__in=request_ids).values_list("pk", flat=True))
    # Links first (control database): once the rows below are gone, nothing could find them.
    Link.objects.filter(company=company, subject_id__in=[*request_ids, *reference_ids]).delete()
    using = router.db_for_write(ReferenceRequest)
    with transaction.atomic(using=using):
        for report in ReportFile.objects.filter(request_id__in=request_ids).only("pk", "file"):
            if report.file.name:
                _remove_after_commit(report.file.storage.remover(report.file.name), using)
                counts["files"] += 1
        ReferenceRequest.objects.filter(pk__in=request_ids).delete()
        counts["requests"] += len(request_ids)
        counts["references"] += len(reference_ids)
        orphans = Candidate.objects.filter(pk__in=candidate_ids).annotate(left=Count("requests")).filter(left=0)
        for candidate in orphans:
            counts["files"] += candidate.attachments.count()  # removed by the attachment receiver
            candidate.delete()
            counts["candidates"] += 1


def apply(company, *, now: datetime | None = None) -> dict[str, int]:
    """Delete ``company``'s requests past their retention period, and candidates left
    without a request. Idempotent; returns counts (requests, references, candidates,
    files) and logs them, with no names, when anything was deleted."""
    now = now or timezone.now()
    counts = {"requests": 0, "references": 0, "candidates": 0, "files": 0}
    with company_context(company):
        months = WorkflowSettings.current().retention_months
        expired = due(now=now).order_by("closed_at", "pk")
        while True:
            rows = list(expired.values_list("pk", "candidate_id")[:BATCH])
            if not rows:
                break
            _delete_batch(company, [pk for pk, _ in rows], {candidate for _, candidate in rows}, counts)
        if counts["requests"]:
            activity.log(
                Kind.RETENTION_DELETED,
                f"{_count(counts['requests'], 'request')} closed more than {_count(months, 'month')} ago deleted, "
                f"with {_count(counts['references'], 'reference')}, {_count(counts['candidates'], 'candidate')} "
                f"and {_count(counts['files'], 'file')}.",
                details={**counts, "retention_months": months},
            )
    return counts


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
