"""A candidate's data exported (JSON) or erased on request, by an admin or owner.

Both change who holds what about a person, so each POST asks for the member's password
again (re-authentication); the pages that explain them do not. The work is done in
``privacy``."""

from __future__ import annotations

import json
from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header

from vouch.accounts.decorators import company_action, reauthentication_required
from vouch.accounts.policy import Action
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core.requests import CompanyRequest
from vouch.references.models import Candidate
from vouch.references.privacy import candidate_data as privacy
from vouch.references.requests.access import candidate_or_404
from vouch.shield import admission


def _candidate(request: CompanyRequest, candidate_id: UUID) -> Candidate:
    # Admins and owners only, who reach every candidate; the one lookup all the same.
    return candidate_or_404(request, candidate_id)


@reauthentication_required
@admission.admit("export")  # a few exports at once per company (P3)
def _export(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    candidate = _candidate(request, candidate_id)
    data = privacy.export_candidate(candidate, actor=request.user)
    record(EventAction.DATA_EXPORT, request=request, target=f"candidate:{candidate.pk}", details={"kind": "candidate"})
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False, default=str), content_type="application/json; charset=utf-8"
    )
    # The candidate's id, not their name, in the file name.
    response["Content-Disposition"] = content_disposition_header(True, f"candidate-{candidate.pk.hex[:8]}.json")  # type: ignore[assignment]  # typing debt: an Optional not narrowed here
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@company_action(Action.EXPORT_CANDIDATE_DATA)
def candidate_export(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    if request.method == "POST":
        return _export(request, candidate_id)
    if request.method not in ("GET", "HEAD"):
        return HttpResponse("Use the export page's button.", status=405, headers={"Allow": "GET, POST"})
    candidate = _candidate(request, candidate_id)
    return render(
        request,
        "references/privacy/export.html",
        {"candidate": candidate, "counts": privacy.erasure_counts(candidate)},
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@reauthentication_required
def _erase(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    candidate = _candidate(request, candidate_id)
    typed = request.POST.get("confirm_name", "")
    if not privacy.name_confirms(candidate, typed[:400]):
        return render(
            request,
            "references/privacy/erase.html",
            {
                "candidate": candidate,
                "counts": privacy.erasure_counts(candidate),
                "typed": typed[:400],
                "error": "Type the candidate's name exactly as shown to confirm. Nothing was erased.",
            },
            status=400,
        )
    deleted = privacy.erase_candidate(candidate, actor=request.user)
    # Counts only: the candidate is gone (the abuse rules count erasures, P18).
    record(EventAction.DATA_ERASED, request=request, target=f"candidate:{candidate_id}", details=deleted.as_dict())
    files = deleted.attachments + deleted.report_files
    messages.success(
        request,
        f"The candidate's data was erased: {_count(deleted.requests, 'request')}, "
        f"{_count(deleted.references, 'referee')} and {_count(files, 'file')}.",
    )
    return redirect("candidates")


@company_action(Action.ERASE_CANDIDATE_DATA)
def candidate_erase(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    if request.method == "POST":
        return _erase(request, candidate_id)
    if request.method not in ("GET", "HEAD"):
        return HttpResponse("Use the erase page's form.", status=405, headers={"Allow": "GET, POST"})
    candidate = _candidate(request, candidate_id)
    return render(
        request,
        "references/privacy/erase.html",
        {"candidate": candidate, "counts": privacy.erasure_counts(candidate), "typed": "", "error": ""},
    )
