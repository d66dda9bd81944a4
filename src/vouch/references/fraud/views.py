"""Reviewing fraud flags: a member who may review (owner, admin, recruiter) marks a flag
reviewed with a comment saying what they checked. The comment, who and when are kept
on the flag, on the request's timeline and in the company's activity log.

Works with htmx (the flags partial comes back in place) and as a plain form (redirect
to the request page after a review; the flags on a page of their own, with the error
and the typed comment, when it is refused)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.references import flows
from vouch.references.fraud import checks as fraud
from vouch.references.fraud import flows as fraud_flows
from vouch.references.request_models import Flag
from vouch.references.requests.access import request_or_404
from vouch.tenancy.lookups import company_object_or_404

MAX_COMMENT = 2000


def _flags(
    request: CompanyRequest,
    reference_request,
    *,
    status: int = 200,
    partial: bool,
    error: str = "",
    flag_id=None,
    comment="",
) -> HttpResponse:
    reference_request.refresh_from_db(fields=["open_flags", "flag_count"])
    flags = fraud.flags_of(reference_request)
    # An error about a flag whose form is gone (reviewed meanwhile) shows above the list.
    still_open = any(flag.pk == flag_id and flag.reviewed_at is None for flag in flags)
    context = {
        "reference_request": reference_request,
        "flags": flags,
        "can_review": policy.can(request.membership, Action.REVIEW_FLAGS),
        "review_flag_id": flag_id,
        "review_error": error if still_open else "",
        "review_notice": "" if still_open else error,
        "review_comment": comment,
    }
    template = "references/requests/_flags.html" if partial else "references/requests/flag_review.html"
    return render(request, template, context, status=status)


@require_POST
@company_action(Action.REVIEW_FLAGS)
def flag_review(request: CompanyRequest, request_id: UUID, flag_id: UUID) -> HttpResponse:
    reference_request = request_or_404(request, request_id)
    # One lookup naming both: a flag is only reachable under its own request.
    flag = company_object_or_404(
        request, Flag.objects.select_related("reference"), pk=flag_id, request=reference_request
    )
    partial = request.headers.get("HX-Request") == "true"
    comment = request.POST.get("comment", "")
    if len(comment) > MAX_COMMENT:
        error = f"Keep the comment under {MAX_COMMENT:,} characters."
        return _flags(
            request, reference_request, status=400, partial=partial, error=error, flag_id=flag.pk, comment=comment
        )
    try:
        fraud_flows.review_flag(flag, actor=request.user, comment=comment)
    except flows.WorkflowError as exc:
        return _flags(
            request, reference_request, status=400, partial=partial, error=str(exc), flag_id=flag.pk, comment=comment
        )
    if partial:
        return _flags(request, reference_request, partial=True)
    messages.success(request, f"Flag marked as reviewed: {fraud.title_of(flag.kind)}.")
    return redirect(reverse("request_detail", kwargs={"request_id": reference_request.pk}) + "#flags")
