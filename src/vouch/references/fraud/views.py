"""Reviewing fraud flags: a member who may review (owner, admin, recruiter) marks flags
reviewed with a comment saying what they checked: one flag, one group (the flags of one
cause on one pair, one comment box for all of them) or every open flag of a referee at
once. The comment, who and when are kept on each flag, on the request's timeline and in
the company's activity log.

After a review the page says what was reviewed and comes back to the same referee's
section (an anchor), where the reviewed items stay in place, marked reviewed. Works
with htmx (the signals section comes back in place, with the confirmation) and as a
plain form (redirect with a message; the signals on a page of their own, with the
error and the typed comment, when it is refused)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.references import flows
from vouch.references.fraud import checks as fraud
from vouch.references.fraud import context as signal_context
from vouch.references.fraud import flows as fraud_flows
from vouch.references.fraud import triage
from vouch.references.request_models import Flag, Reference
from vouch.references.requests.access import request_or_404
from vouch.tenancy.lookups import company_object_or_404

MAX_COMMENT = fraud_flows.MAX_COMMENT
MAX_IDS = 200  # far more flags than one request raises; a longer list is not a browser's


def signals_context(request: CompanyRequest, reference_request, **extra) -> dict:
    """What the signals section (``_flags.html``) shows, for the request page and here."""
    flags = fraud.flags_of(reference_request)
    return {
        "reference_request": reference_request,
        "flags": flags,
        "triage": triage.triage_of(reference_request, flags),
        "can_review": policy.can(request.membership, Action.REVIEW_FLAGS),
        **extra,
    }


def _flags(
    request: CompanyRequest,
    reference_request,
    *,
    status: int = 200,
    partial: bool,
    error: str = "",
    target: str | UUID = "",
    comment: str = "",
    notice: str = "",
) -> HttpResponse:
    reference_request.refresh_from_db(fields=["open_flags", "flag_count"])
    context = signals_context(request, reference_request)
    if isinstance(target, UUID):  # one flag: its errors show by its group's form
        group = context["triage"].group_of(target)
        target = group.key if group is not None else ""
    # An error about flags whose form is gone (reviewed meanwhile) shows above the list.
    forms = {group.key for group in context["triage"].groups if not group.reviewed}
    forms |= {f"referee-{item.reference.pk}" for item in context["triage"].referees if item.open_count}
    still_open = target in forms
    context.update(
        review_target=target,
        review_error=error if still_open else "",
        review_notice=("" if still_open else error),
        review_done=notice,
        review_comment=comment,
    )
    template = "references/requests/_flags.html" if partial else "references/requests/flag_review.html"
    return render(request, template, context, status=status)


def _reviewed(request: CompanyRequest, reference_request, flags: list[Flag], *, what: str, anchor: str) -> HttpResponse:
    notice = f"Marked as reviewed: {what} ({len(flags)} signal{'s' if len(flags) != 1 else ''})."
    if request.headers.get("HX-Request") == "true":
        return _flags(request, reference_request, partial=True, notice=notice)
    messages.success(request, notice)
    return redirect(reverse("request_detail", kwargs={"request_id": reference_request.pk}) + f"#{anchor}")


def _review(
    request: CompanyRequest,
    reference_request,
    flag_ids: list,
    *,
    target: str | UUID,
    what: str,
    anchor: str,
    already: str,
) -> HttpResponse:
    partial = request.headers.get("HX-Request") == "true"
    comment = request.POST.get("comment", "")
    try:
        if len(comment) > MAX_COMMENT:
            raise flows.WorkflowError(f"Keep the comment under {MAX_COMMENT:,} characters.")
        reviewed = fraud_flows.review_flags(reference_request, flag_ids, actor=request.user, comment=comment)
        if not reviewed:
            raise flows.WorkflowError(already)
    except flows.WorkflowError as exc:
        return _flags(
            request, reference_request, status=400, partial=partial, error=str(exc), target=target, comment=comment
        )
    return _reviewed(request, reference_request, reviewed, what=what, anchor=anchor)


def _anchor(reference_id) -> str:
    return f"signals-{reference_id}" if reference_id else "flags"


@require_POST
@company_action(Action.REVIEW_FLAGS)
def flag_review(request: CompanyRequest, request_id: UUID, flag_id: UUID) -> HttpResponse:
    """One flag."""
    reference_request = request_or_404(request, request_id)
    # One lookup naming both: a flag is only reachable under its own request.
    flag = company_object_or_404(
        request, Flag.objects.select_related("reference"), pk=flag_id, request=reference_request
    )
    return _review(
        request,
        reference_request,
        [flag.pk],
        target=flag.pk,
        what=fraud.title_of(flag.kind),
        anchor=_anchor(flag.reference_id),
        already="This flag has already been reviewed.",
    )


@require_POST
@company_action(Action.REVIEW_FLAGS)
def flag_group_review(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    """One group: the flags named in the form, every one of them of this request."""
    reference_request = request_or_404(request, request_id)
    raw = request.POST.getlist("flag")
    if not raw or len(raw) > MAX_IDS:
        raise Http404("No such signals.")
    try:
        ids = {UUID(value) for value in raw}
    except ValueError:
        raise Http404("No such signals.") from None
    flags = list(Flag.objects.filter(request_id=reference_request.pk, pk__in=ids).select_related("reference"))
    if len(flags) != len(ids):  # one of them is another request's (or another company's): none is touched
        raise Http404("No such signals.")
    first = min(flags, key=lambda flag: (flag.raised_at, flag.pk.hex))
    key = request.POST.get("group", "")[:200]
    causes = {triage.cause_of(flag.kind) for flag in flags}
    cause = causes.pop() if len(causes) == 1 else ""
    what = (
        triage.CAUSE_TEXT[cause][0]
        if cause in triage.CAUSE_TEXT
        else fraud.title_of(first.kind)
        if cause
        else "signals"
    )
    if first.reference is not None:
        what = f"{what} — {first.reference.name}"
    return _review(
        request,
        reference_request,
        list(ids),
        target=key,
        what=what,
        anchor=_anchor(first.reference_id),
        already="These signals have already been reviewed.",
    )


@require_POST
@company_action(Action.REVIEW_FLAGS)
def referee_flags_review(request: CompanyRequest, request_id: UUID, reference_id: UUID) -> HttpResponse:
    """Every open flag of one referee, with one comment."""
    reference_request = request_or_404(request, request_id)
    reference = company_object_or_404(
        request, Reference.objects.only("id", "name", "request_id"), pk=reference_id, request=reference_request
    )
    # Its own flags and those of its pairs with other referees (named in the flag's key).
    ids = [
        flag.pk
        for flag in Flag.objects.filter(request_id=reference_request.pk).only("id", "kind", "key", "reference_id")
        if reference.pk.hex in signal_context.parties(flag)
    ]
    if not ids:
        raise Http404("No signals on this referee.")
    return _review(
        request,
        reference_request,
        ids,
        target=f"referee-{reference.pk}",
        what=f"every signal on {reference.name}",
        anchor=_anchor(reference.pk),
        already=f"Every signal on {reference.name} has already been reviewed.",
    )
