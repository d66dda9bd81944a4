"""The operator's side: asking for support access, opening a company through a live grant,
leaving it (P15). These pages name companies and the operator's own grants, never a
person of a company."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from vouch.accounts import policy
from vouch.accounts.models import User
from vouch.core.requests import VouchRequest
from vouch.support import services
from vouch.support.access import SESSION_KEY
from vouch.support.forms import RequestForm
from vouch.support.models import SupportGrant

LIST_LIMIT = 50


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def operator_support(request: VouchRequest) -> HttpResponse:
    user = cast(User, request.user)  # login_required: a User
    policy.require(user.is_staff)
    form = RequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant = services.request_grant(request, user, data["company"], data["reason"], data["hours"])
        except services.GrantError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Asked the owners of {grant.company.name} for access. They have been emailed.")
            return redirect("support_operator")
    services.expire_due()
    grants = list(
        SupportGrant.objects.filter(operator=user).select_related("company").order_by("-requested_at")[:LIST_LIMIT]
    )
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(
        request,
        "support/operator.html",
        {"form": form, "grants": grants, "open_grant": getattr(request, "support_grant", None)},
        status=status,
    )


@login_required
@require_POST
def operator_open(request: VouchRequest, grant_id: str) -> HttpResponse:
    """Enter the company of a live grant, as a member switches company."""
    user = cast(User, request.user)  # login_required: a User
    policy.require(user.is_staff)
    grant = services.live_grant(user, grant_id)
    if grant is None:
        raise Http404
    request.session[SESSION_KEY] = str(grant.pk)
    return redirect("dashboard")


@login_required
@require_POST
def operator_leave(request: VouchRequest) -> HttpResponse:
    policy.require(request.user.is_staff)
    request.session.pop(SESSION_KEY, None)
    messages.info(request, "You left the company.")
    return redirect("support_operator")
