"""Creating many requests from a confirmed CSV.

A handful of rows is created at once, in the confirming request. More than
``SYNC_LIMIT`` would keep the member waiting (every request issues a link, sends an
email and plans its reminders), so they are created by a background task while a page
shows the progress. The rows wait in a :class:`BulkImport` row of the company's
database, encrypted; the task is given its id only, and the rows are cleared once the
import has finished. The task resumes where it stopped (``done``) if a worker dies."""

from __future__ import annotations

import logging
import uuid

from django.utils import timezone
from django_tasks import task

from vouch.accounts import user_service
from vouch.core.context import company_context
from vouch.references import flows
from vouch.references.request_models import BulkImport
from vouch.references.requests import flows as request_flows
from vouch.tenancy import company_db
from vouch.tenancy.models import Company

log = logging.getLogger("vouch.references.bulk")

# At most this many rows are created while the member waits for the page.
SYNC_LIMIT = 20
# How many problems an import keeps to show (the count is always complete).
MAX_PROBLEMS = 200


def start(*, company_id, actor, rows: list[list], shared: dict, skipped: int) -> BulkImport:
    """Keep the rows and queue the task that creates them (once this commits)."""
    shared = {**shared, "deadline": shared["deadline"].isoformat()}
    with company_db.atomic():
        job = BulkImport.objects.create(
            created_by_id=company_db.actor_id(actor),
            rows=rows,
            shared=shared,
            skipped_at_preview=skipped,
            total=len(rows),
        )
        company, job_id = str(company_id), str(job.pk)
        company_db.on_commit(lambda: create_requests.enqueue(company, job_id))
    return job


def run(job: BulkImport) -> BulkImport:
    """Create the import's remaining requests, recording progress after each row."""
    import datetime as dt

    if job.finished_at is not None:
        return job
    actor = user_service.user_or_none(job.created_by_id)
    shared = {**job.shared, "deadline": dt.date.fromisoformat(job.shared["deadline"])}
    problems = list(job.problems or [])
    for line, name, email, phone, role in job.rows[job.done :]:
        try:
            request_flows.create_request(actor=actor, name=name, email=email, phone=phone, role=role, **shared)
        except flows.WorkflowError as exc:
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"Row {line}: {exc}")
        else:
            job.created += 1
        job.done += 1
        job.problems = problems
        job.save(update_fields=["done", "created", "problems"])
    job.rows = []  # the requests hold the data now; the import keeps only its counts
    job.finished_at = timezone.now()
    job.save(update_fields=["rows", "finished_at"])
    return job


@task()
def create_requests(company_id: str, import_id: str) -> int:
    """The background half of :func:`start`. Returns how many requests it created."""
    company = Company.objects.filter(pk=company_id, is_active=True).first()
    if company is None:
        return 0
    with company_context(company):
        job = BulkImport.objects.filter(pk=uuid.UUID(import_id)).first()
        if job is None:
            return 0
        return run(job).created
