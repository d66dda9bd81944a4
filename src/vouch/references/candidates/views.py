"""The candidate pages. Thin: parse, check the role, call a service, render."""

from __future__ import annotations

import logging
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from vouch.accounts import policy, user_service
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core import htmx
from vouch.core.requests import CompanyRequest
from vouch.objectstore import StoreUnavailable
from vouch.references.candidates import listing_html, services
from vouch.references.candidates.forms import AttachmentForm, CandidateForm, DeleteCandidateForm, SearchForm
from vouch.references.candidates.uploads import AttachmentRefused
from vouch.references.models import Attachment, Candidate
from vouch.references.requests.access import candidate_or_404, visibility, visible_candidates
from vouch.shield import admission
from vouch.tenancy.lookups import company_object_or_404
from vouch.vault import downloads
from vouch.vault.errors import VaultError

log = logging.getLogger("vouch.references")
# The id of the element the list's search replaces as the recruiter types.
RESULTS = "candidate-results"


def _candidate(request: CompanyRequest, candidate_id: UUID) -> Candidate:
    return candidate_or_404(request, candidate_id)


def _attachment(request: CompanyRequest, candidate_id: UUID, attachment_id: UUID) -> Attachment:
    # One lookup naming both: an attachment is only reachable under its own candidate,
    # and only while the member reaches that candidate.
    attachments = Attachment.objects.filter(candidate__in=visible_candidates(request))
    return company_object_or_404(request, attachments, pk=attachment_id, candidate_id=candidate_id)


@company_action(Action.VIEW_CANDIDATES)
@admission.admit("search", when=admission.searching)  # a few searches at once per company (P3)
def candidate_list(request: CompanyRequest) -> HttpResponse:
    """The list, or a search of it; as the recruiter types, htmx asks for the results
    alone (``RESULTS``), and without JavaScript the form asks for the whole page."""
    form = SearchForm(request.GET)
    partial = htmx.swaps(request, RESULTS)
    template = "references/_candidate_results.html" if partial else "references/list.html"
    if not form.is_valid():
        return htmx.varies(render(request, template, {"form": form, "result": None, "partial": partial}, status=400))
    result = services.page_of_candidates(
        form.cleaned_data["q"], request.GET.get("page", "1"), within=visibility(request).candidates
    )
    context = {
        "form": form,
        "result": result,
        "querystring": urlencode({"q": result.query}) if result.query else "",
        "can_edit": policy.can(request.membership, Action.EDIT_CANDIDATES),
        "partial": partial,
        "rows": listing_html.rows_html(result.page.object_list),
    }
    return htmx.varies(render(request, template, context))


@company_action(Action.EDIT_CANDIDATES)
def candidate_new(request: CompanyRequest) -> HttpResponse:
    form = CandidateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        candidate = services.create_candidate(**form.cleaned_data, created_by=request.user)
        messages.success(request, f"{candidate.name} added.")
        return redirect("candidate_detail", candidate_id=candidate.pk)
    status = 400 if form.is_bound else 200
    return render(request, "references/form.html", {"form": form, "candidate": None}, status=status)


@company_action(Action.EDIT_CANDIDATES)
def candidate_edit(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    candidate = _candidate(request, candidate_id)
    initial = {field: getattr(candidate, field) for field in services.EDITABLE}
    form = CandidateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changed = services.update_candidate(candidate, actor=request.user, **form.cleaned_data)
        messages.success(request, "Changes saved." if changed else "Nothing changed.")
        return redirect("candidate_detail", candidate_id=candidate.pk)
    status = 400 if form.is_bound else 200
    return render(request, "references/form.html", {"form": form, "candidate": candidate}, status=status)


def _detail(request: CompanyRequest, candidate: Candidate, upload_form: AttachmentForm | None, status: int = 200):
    membership = request.membership
    creator = candidate.created_by_id
    added_by = user_service.member_names([creator]).get(creator) if creator else None
    return render(
        request,
        "references/detail.html",
        {
            "candidate": candidate,
            "attachments": services.attachments_of(candidate),
            "added_by": added_by,
            "can_edit": policy.can(membership, Action.EDIT_CANDIDATES),
            "can_delete": policy.can(membership, Action.DELETE_CANDIDATES),
            "upload_form": upload_form,
            "delete_form": DeleteCandidateForm(),
        },
        status=status,
    )


@company_action(Action.VIEW_CANDIDATES)
def candidate_detail(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    candidate = _candidate(request, candidate_id)
    return _detail(request, candidate, AttachmentForm())


@require_POST
@company_action(Action.DELETE_CANDIDATES)
def candidate_delete(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    candidate = _candidate(request, candidate_id)
    form = DeleteCandidateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the box to confirm the deletion.")
        return redirect("candidate_detail", candidate_id=candidate.pk)
    name = candidate.name
    try:
        files = services.delete_candidate(candidate, actor=request.user)
    except services.CandidateHasRequests:
        messages.error(
            request,
            f"{name} has reference requests. Erasing their data removes the candidate with every request, "
            "referee answer and file.",
        )
        return redirect("candidate_erase", candidate_id=candidate.pk)
    messages.success(request, f"{name} deleted, with {files} file{'s' if files != 1 else ''}.")
    return redirect("candidates")


@require_POST
@company_action(Action.EDIT_CANDIDATES)
def attachment_upload(request: CompanyRequest, candidate_id: UUID) -> HttpResponse:
    candidate = _candidate(request, candidate_id)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            attachment = services.add_attachment(candidate, form.cleaned_data["file"], uploaded_by=request.user)
        except AttachmentRefused as exc:
            form.add_error("file", str(exc))
        except StoreUnavailable:
            # The candidate and their other files are untouched; nothing half-stored stays.
            log.warning("attachment upload refused: the file storage is unavailable")
            form.add_error(
                "file",
                "Vouch cannot reach its file storage right now, so the file was not saved. Try again in a minute.",
            )
            response = _detail(request, candidate, form, status=503)
            response["Retry-After"] = "60"
            response._has_been_logged = True  # logged above, once, without a traceback
            return response
        else:
            messages.success(request, f"{attachment.original_name} attached.")
            return redirect("candidate_detail", candidate_id=candidate.pk)
    return _detail(request, candidate, form, status=400)


@company_action(Action.VIEW_CANDIDATES)
def attachment_download(
    request: CompanyRequest, candidate_id: UUID, attachment_id: UUID
) -> HttpResponse | StreamingHttpResponse:
    attachment = _attachment(request, candidate_id, attachment_id)
    try:
        first, handle = downloads.open_checked(attachment.file.storage, attachment.file.name)
    except (OSError, VaultError):
        log.exception("attachment %s could not be read", attachment.pk)
        return render(
            request,
            "web/error.html",
            {
                "status": 500,
                "title": "This file cannot be opened",
                "message": "The stored file is missing or failed its integrity check. The problem has been logged.",
            },
            status=500,
        )
    # A download of personal data, counted by the abuse rules against the company's normal (P18).
    record(
        EventAction.DATA_EXPORT, request=request, target=f"attachment:{attachment.pk}", details={"kind": "attachment"}
    )
    return downloads.download(
        first,
        handle,
        content_type=attachment.content_type,
        size=attachment.size,
        filename=attachment.original_name or "attachment",
    )


@require_POST
@company_action(Action.DELETE_CANDIDATES)
def attachment_delete(request: CompanyRequest, candidate_id: UUID, attachment_id: UUID) -> HttpResponse:
    attachment = _attachment(request, candidate_id, attachment_id)
    name = attachment.original_name
    services.delete_attachment(attachment, actor=request.user)
    messages.success(request, f"{name} removed.")
    return redirect("candidate_detail", candidate_id=candidate_id)
