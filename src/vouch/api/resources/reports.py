"""A request's report, as JSON (what the report page shows: ``reports.data.build_report``)
and as the PDF (the report page's own download: ``reports.views.pdf_download``), for the
key's creator's view of the company. Scope ``reports:read``."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router

from vouch.accounts import policy
from vouch.accounts.policy import Action
from vouch.api.auth import need
from vouch.api.problems import problem
from vouch.references.reports import data as report_data
from vouch.references.reports import pdf as pdfs
from vouch.references.reports.views import pdf_download
from vouch.references.requests.access import request_or_404
from vouch.vault.errors import VaultError

log = logging.getLogger("vouch.api")
router = Router()
SCOPE = "reports:read"

PDF_RESPONSES = {
    "responses": {
        200: {
            "description": "The report as a PDF (a download named after the request's short id).",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        429: {
            "description": "Not rendered now (too many renders, or this one under way): retry after Retry-After.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
    }
}


@router.get("/{request_id}/report", response=dict[str, Any], summary="Read a request's report (reports:read)")
def read_report(request: HttpRequest, request_id: uuid.UUID):
    """The request, the candidate, each referee with their answers, identity checks and
    flags, the summaries and the timeline: the report page's content."""
    need(request, SCOPE)
    policy.require(policy.can(request.membership, Action.VIEW_REPORTS))  # type: ignore[attr-defined]
    return report_data.build_report(request_or_404(request, request_id))  # type: ignore[arg-type]


@router.get(
    "/{request_id}/report.pdf",
    summary="Download a request's report as PDF (reports:read)",
    openapi_extra=PDF_RESPONSES,
)
def read_report_pdf(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse | StreamingHttpResponse:
    """The report page's PDF: stored encrypted and made again only when the report has
    changed. Rendering is limited per member and per company, as on the page: a refusal
    is a 429 with ``Retry-After``."""
    need(request, SCOPE)
    policy.require(policy.can(request.membership, Action.VIEW_REPORTS))  # type: ignore[attr-defined]
    reference_request = request_or_404(request, request_id)  # type: ignore[arg-type]
    try:
        return pdf_download(request, reference_request)
    except pdfs.RenderRefused as refused:
        return problem(429, str(refused), Retry_After=str(refused.retry_after))
    except (OSError, VaultError, pdfs.ReportRenderingError):
        log.exception("api: the report PDF of request %s could not be made or read", reference_request.pk)
        return problem(500, "The report PDF could not be made or its stored copy failed its integrity check.")
