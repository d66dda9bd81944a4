from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from vouch.tenancy.services import switch_company


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("company", "")
    try:
        company_id = str(uuid.UUID(raw))
    except ValueError:
        raise Http404 from None
    membership = switch_company(request.session, request.user, company_id)
    if membership is None:
        # Same answer as a company that does not exist: no hint that it does.
        raise Http404
    messages.success(request, f"You are now working in {membership.company.name}.")
    return redirect("dashboard")
