"""Security event pages: a company's events for its admins, platform events for operators."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.audit.filters import page_of_events
from vouch.core.requests import CompanyRequest, VouchRequest


def _querystring(request: VouchRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@company_action(Action.VIEW_SECURITY_EVENTS)
def company_events(request: CompanyRequest) -> HttpResponse:
    # Only ever the current company's events: the scope is request.company, set after
    # the membership check, and the query string can only narrow it.
    form, page = page_of_events(request.company.pk, request.GET)
    return render(
        request,
        "audit/events.html",
        {"form": form, "page": page, "querystring": _querystring(request), "scope": "company"},
        status=200 if page is not None else 400,
    )


@login_required
def operator_events(request: VouchRequest) -> HttpResponse:
    # Platform events only: companies' events are theirs (P15).
    policy.require(request.user.is_staff)
    form, page = page_of_events(None, request.GET)
    return render(
        request,
        "audit/events.html",
        {"form": form, "page": page, "querystring": _querystring(request), "scope": "platform"},
        status=200 if page is not None else 400,
    )
