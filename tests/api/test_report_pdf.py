"""The report PDF through the API: the report page's own stored PDF, its render limits
(per member and per company, vouch.shield.admission) as problems, its scope, and another
company's ids."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from pypdf import PdfReader

from tests.api.conftest import ApiClient, make_key
from tests.conftest import make_company
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.audit.models import SecurityEvent
from vouch.core.context import company_context
from vouch.references.request_models import ReportFile
from vouch.shield import admission

pytestmark = pytest.mark.django_db
NAME = "Zoë O'Brien-Ångström"


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_pdf_holds_the_report_and_is_logged_as_an_export(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, name=NAME)
    api = ApiClient(make_key(members[Role.ADMIN], ["reports:read"]))
    response = api.get(f"/api/v1/requests/{reference_request.pk}/report.pdf")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    # Named by the request's short id, never the candidate's name.
    assert "reference-report-" in response["Content-Disposition"] and "Br" not in response["Content-Disposition"]
    content = b"".join(response.streaming_content)
    assert content.startswith(b"%PDF-")
    assert NAME in pdf_text(content)
    with company_context(company):
        assert ReportFile.objects.filter(request=reference_request).count() == 1  # stored, as for the page
        assert Entry.objects.filter(action="report_downloaded").count() == 1
    assert SecurityEvent.objects.filter(
        action="data_export", target=f"request:{reference_request.pk}", details__kind="report_pdf"
    ).exists()


def test_a_key_without_reports_read_is_refused(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    api = ApiClient(make_key(members[Role.ADMIN], ["requests:read", "requests:write", "webhooks:manage"]))
    response = api.get(f"/api/v1/requests/{reference_request.pk}/report.pdf")
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert "reports:read" in response.json()["detail"]
    with company_context(company):
        assert not ReportFile.objects.exists()  # nothing rendered for a refused key


def test_another_companys_request_is_a_404_problem(company, members):
    other = make_company()
    theirs, _ = make_request(other, other.memberships.get().user, name=NAME)
    response = ApiClient(make_key(members[Role.OWNER])).get(f"/api/v1/requests/{theirs.pk}/report.pdf")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert NAME.encode() not in response.content
    with company_context(other):
        assert not ReportFile.objects.exists()
    unknown = ApiClient(make_key(members[Role.OWNER])).get("/api/v1/requests/not-a-uuid/report.pdf")
    assert unknown.status_code == 422 and unknown["Content-Type"] == "application/problem+json"  # as every id


def test_render_limits_answer_a_429_problem_with_retry_after(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    api = ApiClient(make_key(members[Role.ADMIN], ["reports:read"]))
    path = f"/api/v1/requests/{reference_request.pk}/report.pdf"
    # The company's PDF slots all taken (vouch.shield.admission): a wait, not a thread.
    with company_context(company):
        company_id = company.pk
    held = [admission.admitted("pdf", company_id) for _ in range(admission.at_once("pdf"))]
    for slot in held:
        slot.__enter__()
    try:
        busy = api.get(path)
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert busy.status_code == 429 and busy["Content-Type"] == "application/problem+json"
    assert int(busy["Retry-After"]) > 0 and busy.json()["status"] == 429
    # This very report already being rendered: the same answer.
    lock = f"vouch:report-render:{company_id}:{reference_request.pk}"
    cache.add(lock, 1, 60)
    try:
        prepared = api.get(path)
    finally:
        cache.delete(lock)
    assert prepared.status_code == 429 and prepared["Retry-After"] == "5"
    assert "being prepared" in prepared.json()["detail"]
    assert api.get(path).status_code == 200  # free again


def test_the_openapi_document_gives_the_pdf_media_type():
    document = ApiClient(None).get("/api/v1/openapi.json")
    assert document.status_code == 200
    operation = document.json()["paths"]["/api/v1/requests/{request_id}/report.pdf"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/pdf"]
    assert operation["responses"]["200"]["content"]["application/pdf"]["schema"]["format"] == "binary"
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "application/problem+json" in operation["responses"]["default"]["content"]
