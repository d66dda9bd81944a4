"""The report page of a request and its PDF. Thin: find the request the member may
see, build the report data (``report``), render it or hand back the stored PDF
(``report_pdf`` module)."""

from __future__ import annotations

import logging
from uuid import UUID

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.activity import services as activity
from vouch.activity.services import Kind
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core.requests import CompanyRequest
from vouch.references.desk import figures
from vouch.references.reports import data as report_data
from vouch.references.reports import pdf as pdfs
from vouch.references.requests.access import request_or_404
from vouch.vault import downloads
from vouch.vault.errors import VaultError

log = logging.getLogger("vouch.references")


@require_safe
@company_action(Action.VIEW_REPORTS)
def report(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    reference_request = request_or_404(request, request_id)
    figures.mark_report_viewed(reference_request, request.membership.user_id)
    response = render(
        request,
        "references/report/page.html",
        {"report": report_data.build_report(reference_request), "reference_request": reference_request},
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _cannot(request: CompanyRequest, message: str) -> HttpResponse:
    return render(
        request,
        "web/error.html",
        {"status": 500, "title": "The PDF cannot be made", "message": message},
        status=500,
    )


def pdf_download(request, reference_request) -> StreamingHttpResponse:
    """The report PDF of a request the caller may see, as a download, logged and recorded
    as an export; shared by the page below and the API (vouch.api). Raises
    ``pdfs.RenderRefused`` (wait and retry) or OSError / VaultError /
    ``pdfs.ReportRenderingError`` (it cannot be made or read), for the caller to answer."""
    stored = pdfs.report_file_for(reference_request, member_id=request.user.pk)
    # Decrypted and checked before any header goes out, so a damaged file is a
    # clear answer rather than a download cut short (as attachments are served).
    first, handle = downloads.open_checked(stored.file.storage, stored.file.name)
    activity.log(
        Kind.REPORT_DOWNLOADED,
        "A reference report was downloaded as PDF.",
        actor=request.user,
        details={"request": str(reference_request.pk)},
    )
    # A download of personal data, counted by the abuse rules against the company's normal (P18).
    record(
        EventAction.DATA_EXPORT,
        request=request,
        target=f"request:{reference_request.pk}",
        details={"kind": "report_pdf"},
    )
    # The request's short id, never the candidate's name: file names end up in
    # download folders, mail attachments and synced drives.
    filename = f"reference-report-{report_data.short_id(reference_request)}.pdf"
    return downloads.download(first, handle, content_type="application/pdf", size=stored.size, filename=filename)


@require_safe  # reading: a POST must not render, store or log anything
@company_action(Action.VIEW_REPORTS)
def report_pdf(request: CompanyRequest, request_id: UUID) -> HttpResponse | StreamingHttpResponse:
    reference_request = request_or_404(request, request_id)
    try:
        return pdf_download(request, reference_request)
    except pdfs.RenderRefused as refused:
        wait = render(
            request,
            "web/error.html",
            {"status": 429, "title": "Please wait a moment", "message": str(refused)},
            status=429,
        )
        wait["Retry-After"] = str(refused.retry_after)
        return wait
    except (OSError, VaultError, pdfs.ReportRenderingError):
        log.exception("the report PDF of request %s could not be made or read", reference_request.pk)
        return _cannot(
            request,
            "The report could not be rendered or its stored copy failed its integrity check. "
            "The problem has been logged; the report page still shows everything.",
        )
