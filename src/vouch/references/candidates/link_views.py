"""The candidate's pages, under their private link: confirm their details, nominate
referees, follow each referee's status, replace one who declined or is overdue.

The candidate has no account: ``link_required`` has already resolved the link and set
the company, and ``request.link.subject_id`` names the one reference request these
pages may touch. Every change goes through ``candidates.flows``; every action is recorded
for the fraud checks. What a referee answered, and why one declined, are never put
in front of the candidate: the templates only ever see the fields listed in
``_referee_rows``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from vouch.core.requests import LinkRequest
from vouch.links.decorators import ended_response, link_required, neutral_response
from vouch.links.models import Purpose
from vouch.references import flows
from vouch.references.candidates import flows as candidate_flows
from vouch.references.candidates.link_forms import CandidateDetailsForm, NominationForm
from vouch.references.fraud import checks as fraud
from vouch.references.months import month_label
from vouch.references.request_models import (
    OPEN_REFERENCE_STATUSES,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
)

log = logging.getLogger("vouch.references")

# The confirmations a redirect may ask the home page to show (?done=...): fixed
# sentences, so nothing from the address is ever echoed.
DONE = {
    "confirmed": "Thank you: your details are confirmed.",
    "nominated": "Referee added: we have emailed them their private link.",
    "replaced": "Referee replaced: we have emailed the new referee their private link.",
}

# What each status means to the candidate, in a line.
STATUS_HINTS = {
    ReferenceStatus.INVITED: "We have emailed them their link.",
    ReferenceStatus.OPENED: "They have opened their link.",
    ReferenceStatus.IN_PROGRESS: "They have started their reference.",
    ReferenceStatus.COMPLETED: "Their reference is in. Thank you.",
    ReferenceStatus.DECLINED: "They are not able to give a reference.",
    ReferenceStatus.REPLACED: "You nominated someone else instead.",
    ReferenceStatus.EXPIRED: "The deadline passed before they answered.",
    ReferenceStatus.CANCELLED: "No longer needed.",
}


def _reference_request(request: LinkRequest) -> ReferenceRequest | None:
    return (
        ReferenceRequest.objects.select_related("candidate", "questionnaire_version")
        .filter(pk=request.link.subject_id)
        .first()
    )


def _home_url(request: LinkRequest, done: str = "") -> str:
    url = reverse("candidate_link", kwargs={"token": request.link.token})
    # "#done": on a phone the browser shows the confirmation, wherever the form was.
    return f"{url}?done={done}#done" if done else url


def _signal(
    request: LinkRequest, reference_request: ReferenceRequest, action: str, reference: Reference | None = None
) -> None:
    """Record the action for the fraud checks (and, after a nomination, run them). The
    candidate's change has already been made: a failure here is logged, not shown."""
    try:
        fraud.record(request, reference_request, actor="candidate", action=action, reference=reference)
        # record() runs the checks after a new touch too; after a nomination they
        # run whatever record() kept, so a new referee is always checked at once.
        if action in ("nominated", "replaced"):
            fraud.evaluate(reference_request)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("references: could not record the candidate's %s action", action)


def _row(reference: Reference, *, may_replace: bool, replace_after: int, names: dict) -> dict:
    """What the candidate may know of one referee: who, how they know them, and a
    plain status. Never the answers, the decline reason or the identity confirmation."""
    replaceable = may_replace and candidate_flows.can_replace(reference)
    waiting = may_replace and reference.status in OPEN_REFERENCE_STATUSES and not replaceable
    return {
        "id": reference.pk,
        "name": reference.name,
        "relationship": reference.get_relationship_display(),
        "organisation": reference.organisation,
        "worked": _worked(reference.worked_from, reference.worked_to),
        "status": reference.status,
        "status_label": reference.get_status_display(),
        "hint": STATUS_HINTS.get(reference.status, ""),  # type: ignore[call-overload]  # typing debt
        "replaced_by": names.get(reference.replaced_by_id, ""),
        "replaceable": replaceable,
        # When an unanswered referee may be swapped for someone else.
        "replaceable_from": reference.nominated_at + timedelta(days=replace_after) if waiting else None,
    }


def _referee_rows(reference_request: ReferenceRequest, *, may_replace: bool) -> list[dict]:
    references = list(reference_request.references.all())
    names = {reference.pk: reference.name for reference in references}
    replace_after = flows.company_settings().replace_after_days
    return [
        _row(reference, may_replace=may_replace, replace_after=replace_after, names=names) for reference in references
    ]


def _worked(start: str, end: str) -> str:
    if not start:
        return ""
    return f"{month_label(start)} – {month_label(end) if end else 'now'}"


def _page(
    request: LinkRequest,
    reference_request: ReferenceRequest,
    *,
    details_form: CandidateDetailsForm | None = None,
    nomination_form: NominationForm | None = None,
    status: int = 200,
    root: str = "./",
) -> HttpResponse:
    """The home page: the request, the candidate's details, their referees and, while
    the request is open and a place is free, the nomination form. ``root`` is the way
    back to the link's own address, relative to the page's (the token stays out of
    the page itself)."""
    is_open = reference_request.is_open
    rows = _referee_rows(reference_request, may_replace=is_open)
    completed = sum(1 for row in rows if row["status"] == ReferenceStatus.COMPLETED)
    # A place freed by a referee who declined is filled through "Replace" beside them,
    # so the timeline says who took whose place; the form is for the other places.
    awaiting_replacement = sum(1 for row in rows if row["replaceable"] and row["status"] == ReferenceStatus.DECLINED)
    slots = max(0, candidate_flows.open_slots(reference_request) - awaiting_replacement) if is_open else 0
    if is_open and details_form is None:
        candidate = reference_request.candidate
        details_form = CandidateDetailsForm(
            initial={"name": candidate.name, "email": candidate.email, "phone": candidate.phone}
        )
    if is_open and slots and nomination_form is None:
        nomination_form = NominationForm(work_email_required=reference_request.work_email_required)
    done = request.GET.get("done", "")
    context = {
        "company_name": request.link.company.name,
        "reference_request": reference_request,
        "is_open": is_open,
        "confirmed": reference_request.candidate_confirmed_at is not None,
        "details_form": details_form if is_open else None,
        # A refused nomination keeps its form (and what was typed) even once no place
        # is left, so the reason shows next to it.
        "nomination_form": nomination_form if is_open and (slots or nomination_form is not None) else None,
        "referees": rows,
        "completed": completed,
        "slots": slots,
        "awaiting_replacement": awaiting_replacement,
        "done": DONE.get(done, "") if status == 200 else "",
        "root": root,
    }
    return render(request, "references/candidate/home.html", context, status=status)


def _closed(request: LinkRequest, reference_request: ReferenceRequest, root: str) -> HttpResponse:
    """A change asked of a request that is no longer open: the closed page, refused."""
    return _page(request, reference_request, status=409, root=root)


def _with_reference_request(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view gets the link's reference request after the HTTP request:
    ``view(request, reference_request, ...)``. A reference request that is gone gets the
    neutral page; a cancelled one the ended page (it is nobody's business any more, and
    its link is withdrawn anyway)."""

    @functools.wraps(view)
    def wrapper(request: LinkRequest, *args, **kwargs) -> HttpResponse:
        reference_request = _reference_request(request)
        if reference_request is None:
            return neutral_response()
        if reference_request.status == RequestStatus.CANCELLED:
            return ended_response()
        return view(request, reference_request, *args, **kwargs)

    return wrapper


@link_required(Purpose.CANDIDATE)
@_with_reference_request
def candidate_home(request: LinkRequest, reference_request: ReferenceRequest) -> HttpResponse:
    if reference_request.is_open:
        candidate_flows.candidate_opened(reference_request)
    _signal(request, reference_request, "opened")
    return _page(request, reference_request)


@link_required(Purpose.CANDIDATE)
@_with_reference_request
def candidate_details(request: LinkRequest, reference_request: ReferenceRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseRedirect(_home_url(request))
    if not reference_request.is_open:
        return _closed(request, reference_request, "../")
    form = CandidateDetailsForm(request.POST)
    if form.is_valid():
        try:
            candidate_flows.confirm_candidate(reference_request, **form.cleaned_data)
        except flows.WorkflowError as refused:
            form.add_error(None, str(refused))
        else:
            _signal(request, reference_request, "confirmed")
            return HttpResponseRedirect(_home_url(request, "confirmed"))
    reference_request.refresh_from_db()
    return _page(request, reference_request, details_form=form, status=400, root="../")


@link_required(Purpose.CANDIDATE)
@_with_reference_request
def candidate_nominate(request: LinkRequest, reference_request: ReferenceRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseRedirect(_home_url(request))
    if not reference_request.is_open:
        return _closed(request, reference_request, "../")
    form = NominationForm(request.POST, work_email_required=reference_request.work_email_required)
    if form.is_valid():
        try:
            reference = candidate_flows.nominate(reference_request, **form.workflow_arguments())
        except flows.WorkflowError as refused:
            form.add_error(None, str(refused))
        else:
            _signal(request, reference_request, "nominated", reference)
            return HttpResponseRedirect(_home_url(request, "nominated"))
    reference_request.refresh_from_db()
    return _page(request, reference_request, nomination_form=form, status=400, root="../")


@link_required(Purpose.CANDIDATE)
@_with_reference_request
def candidate_replace(request: LinkRequest, reference_request: ReferenceRequest, reference_id: UUID) -> HttpResponse:
    # One lookup naming both: only a referee of this very request can be replaced here.
    reference = Reference.objects.filter(pk=reference_id, request=reference_request).first()
    if reference is None:
        return neutral_response()
    if not reference_request.is_open:
        return _closed(request, reference_request, "../../")
    context = {
        "company_name": request.link.company.name,
        "reference_request": reference_request,
        "old": _row(reference, may_replace=False, replace_after=0, names={}),
        "root": "../../",
    }
    if not candidate_flows.can_replace(reference):
        return render(request, "references/candidate/replace.html", {**context, "form": None}, status=409)
    if request.method != "POST":
        form = NominationForm(work_email_required=reference_request.work_email_required)
        return render(request, "references/candidate/replace.html", {**context, "form": form})
    form = NominationForm(request.POST, work_email_required=reference_request.work_email_required)
    if form.is_valid():
        try:
            new = candidate_flows.nominate(reference_request, replacing=reference, **form.workflow_arguments())
        except flows.WorkflowError as refused:
            form.add_error(None, str(refused))
        else:
            _signal(request, reference_request, "replaced", new)
            return HttpResponseRedirect(_home_url(request, "replaced"))
    return render(request, "references/candidate/replace.html", {**context, "form": form}, status=400)
