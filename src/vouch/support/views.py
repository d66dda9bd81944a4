"""The owners' side: reviewing a request for support access, the company's grants, revoking
one (P15). Owners only (``Action.MANAGE_SECURITY``), and always the grant's own company."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.support import services
from vouch.support.forms import DecisionForm
from vouch.support.models import MAX_HOURS, SupportGrant
from vouch.tenancy.lookups import company_object_or_404, record_miss
from vouch.tenancy.services import switch_company

LIST_LIMIT = 100


def _any_grant(request: VouchRequest, grant_id: str) -> SupportGrant:
    """The grant by id, whichever company's: the review page checks the person's own
    membership of its company next. A miss is a 404, recorded (an id-guessing probe)."""
    try:
        return SupportGrant.objects.select_related("company", "operator", "decided_by").get(pk=grant_id)
    except (SupportGrant.DoesNotExist, ValidationError):
        record_miss(request, SupportGrant)
        raise Http404 from None


@company_action(Action.MANAGE_SECURITY)
def grants(request: CompanyRequest) -> HttpResponse:
    services.expire_due(request.company)
    rows = list(
        SupportGrant.objects.filter(company=request.company)
        .select_related("operator", "decided_by", "revoked_by")
        .order_by("-requested_at")[:LIST_LIMIT]
    )
    return render(request, "support/grants.html", {"grants": rows})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def review(request: VouchRequest, grant_id: str) -> HttpResponse:
    """The page the owners' email links to. The grant's company becomes the current one
    (the owner's own membership, as the switcher does), so its security rules apply."""
    user = cast(User, request.user)  # login_required: a User
    grant = _any_grant(request, grant_id)
    membership = Membership.objects.filter(
        user=user, company_id=grant.company_id, is_active=True, company__is_active=True
    ).first()
    if membership is None or user.is_staff:
        # Not a member of its company: the same 404 as for no such grant, recorded.
        record_miss(request, SupportGrant)
        raise Http404
    membership.user = user
    policy.require(policy.can(membership, Action.MANAGE_SECURITY))  # members other than owners: refused
    if request.company is None or request.company.pk != grant.company_id:
        switch_company(request.session, user, str(grant.company_id))
        return redirect("support_review", grant_id=grant.pk)
    form = DecisionForm(
        request.POST if request.method == "POST" else None,
        initial={"hours": min(grant.requested_hours, MAX_HOURS)},
    )
    if request.method == "POST":
        try:
            if request.POST.get("decision") == "decline":
                services.decline(request, grant, user)
                messages.success(request, "You declined the request for support access.")
                return redirect("support_grants")
            if form.is_valid():
                services.approve(
                    request,
                    grant,
                    user,
                    hours=form.cleaned_data["hours"],
                    scope=form.cleaned_data["scope"],
                )
                messages.success(request, "Support access approved. You can revoke it here at any time.")
                return redirect("support_grants")
        except services.GrantError as error:
            form.add_error(None, str(error))
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "support/review.html", {"grant": grant, "form": form}, status=status)


@require_POST
@company_action(Action.MANAGE_SECURITY)
def revoke(request: CompanyRequest, grant_id: str) -> HttpResponse:
    grant = company_object_or_404(request, SupportGrant.objects.filter(company=request.company), pk=grant_id)
    try:
        services.revoke(request, grant, cast(User, request.user))  # a company page: a signed-in User
    except services.GrantError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Support access ended. The operator no longer sees the company's pages.")
    return redirect("support_grants")
