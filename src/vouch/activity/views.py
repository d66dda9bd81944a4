"""The company's activity log pages. Thin: parse, call a service, render."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import render

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.activity import services
from vouch.activity.models import Entry
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.tenancy.lookups import company_object_or_404


def _querystring(request: VouchRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@company_action(Action.VIEW_ACTIVITY)
def entry_list(request: CompanyRequest) -> HttpResponse:
    form, page = services.page_of_entries(request.GET)
    return render(
        request,
        "activity/list.html",
        {"form": form, "page": page, "querystring": _querystring(request)},
        status=200 if page is not None else 400,
    )


@company_action(Action.VIEW_ACTIVITY)
def entry_detail(request: CompanyRequest, pk: uuid.UUID) -> HttpResponse:
    entry = company_object_or_404(request, Entry, pk=pk)
    return render(
        request,
        "activity/detail.html",
        {"entry": entry, "action_label": services.label(entry.action), "details": sorted(entry.details.items())},
    )
