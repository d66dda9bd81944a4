"""More rows than a member should wait for are created by a background task, with a
progress page; the rows wait encrypted, the task queue holds ids only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.references.jobs_helpers import run_due
from tests.references.test_bulk_requests import confirm, payload_of, preview
from tests.references.workflow import last_token
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.references import bulk
from vouch.references.models import ReferenceRequest
from vouch.references.request_models import BulkImport

pytestmark = pytest.mark.django_db

ROWS = bulk.SYNC_LIMIT + 5


def csv_of(count: int, *, bad: int = 0) -> str:
    lines = ["name,email,phone,role"]
    lines += [f"Person Number{i},person{i}@example.com,,Analyst" for i in range(count)]
    lines += [f"Broken Row{i},not-an-email,,Analyst" for i in range(bad)]
    return "\n".join(lines) + "\n"


def test_a_large_batch_is_created_in_the_background_with_its_progress(client, members, company):
    recruiter = members[Role.RECRUITER].user
    client.force_login(recruiter)
    response = confirm(client, payload_of(preview(client, csv_of(ROWS, bad=2))))
    with company_context(company):
        job = BulkImport.objects.get()
        assert ReferenceRequest.objects.count() == 0  # nothing yet: the worker does it
        assert (job.total, job.done, job.skipped_at_preview) == (ROWS, 0, 2)
    assert response.status_code == 302
    assert response["Location"] == reverse("request_bulk_progress", args=[job.pk])
    waiting = client.get(response["Location"]).content.decode()
    assert "0 of 25 done" in waiting and 'hx-trigger="every 1s"' in waiting
    # The queue holds the company's and the import's ids, and no row's data.
    queued = DBTaskResult.objects.get(task_path__endswith="bulk.create_requests")
    assert queued.args_kwargs["args"] == [str(company.pk), str(job.pk)]
    assert "person" not in json.dumps(queued.args_kwargs).lower()

    run_due(timezone.now())

    with company_context(company) as context:
        job = BulkImport.objects.get()
        assert (job.done, job.created, job.rows, job.finished_at is not None) == (ROWS, ROWS, [], True)
        assert ReferenceRequest.objects.count() == ROWS
        assert set(ReferenceRequest.objects.values_list("created_by_id", flat=True)) == {recruiter.pk}
        with connections[context.alias].cursor() as cursor:
            cursor.execute("SELECT rows, shared FROM references_bulkimport")
            raw = b"".join(bytes(value) for value in cursor.fetchone())
        assert b"person" not in raw.lower() and b"Analyst" not in raw
    assert links.resolve(last_token("person7@example.com", "c"), "candidate") is not None
    page = client.get(reverse("request_bulk_progress", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Created 25 requests" in page and "2 rows skipped" in page and "every 1s" not in page


def test_only_the_member_who_started_an_import_sees_it(client, members, company):
    with company_context(company):
        job = bulk.start(
            company_id=company.pk,
            actor=members[Role.RECRUITER].user,
            rows=[[2, "Ada Lovelace", "ada@example.com", "", "Analyst"]],
            shared={
                "questionnaire": "builtin:general-professional",
                "referees_required": 2,
                "guidance": "",
                "deadline": timezone.now().date() + timedelta(days=10),
                "work_email_required": False,
            },
            skipped=0,
        )
    client.force_login(members[Role.ADMIN].user)
    assert client.get(reverse("request_bulk_progress", args=[job.pk])).status_code == 404
    client.force_login(members[Role.VIEWER].user)
    assert client.get(reverse("request_bulk_progress", args=[job.pk])).status_code == 403


def test_an_interrupted_import_resumes_after_the_rows_it_did(company, members):
    shared = {
        "questionnaire": "builtin:general-professional",
        "referees_required": 2,
        "guidance": "",
        "deadline": timezone.now().date() + timedelta(days=10),
        "work_email_required": False,
    }
    rows = [[i + 2, f"Person {i}", f"p{i}@example.com", "", "Analyst"] for i in range(3)]
    with company_context(company):
        job = bulk.start(company_id=company.pk, actor=members[Role.RECRUITER].user, rows=rows, shared=shared, skipped=0)
        BulkImport.objects.filter(pk=job.pk).update(done=1, created=1)  # a worker died after row 1
        job = bulk.run(BulkImport.objects.get(pk=job.pk))
        assert (job.done, job.created) == (3, 3)
        emails = {r.candidate.email for r in ReferenceRequest.objects.select_related("candidate")}
        assert emails == {"p1@example.com", "p2@example.com"}  # row 1 was not made twice
        assert bulk.run(job).created == 3  # a finished import does nothing more
