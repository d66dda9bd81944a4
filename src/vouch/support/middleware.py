"""Operators on the site (P15): two-factor before anything else, and under a support
grant every page recorded where the company sees it, writes refused under a read-only
grant, before any view runs. Without a live grant a company page is the same 404
anyone else gets.

Runs after ``vouch.tenancy.middleware.CompanyMiddleware`` (which puts an operator with a
live grant in that company, through ``vouch.support.access.membership_for``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.core.requests import VouchRequest
from vouch.guard import mfa

# What an operator without two-factor may still reach: their account pages (to set it up,
# or sign out), static files, and the health checks of load balancers.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/livez")
# The operator's own pages, not the company's: neither recorded nor refused under a grant.
OWN_PREFIXES = ("/accounts/", "/operator/", "/static/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The dashboard shows no one's data and is where members land: an operator outside any
# company is sent on to their own page from it (vouch.accounts.decorators.company_action).
LANDING_ROUTES = frozenset({"dashboard"})


class SupportMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: VouchRequest) -> HttpResponse:
        user = request.user
        operator = user.is_authenticated and user.is_staff
        if operator and not request.path.startswith(MFA_EXEMPT_PREFIXES) and not mfa.has_2fa(user):
            messages.warning(request, "Operators must use two-factor authentication. Set it up to continue.")
            return redirect("mfa_index")
        return self.get_response(request)

    def process_view(self, request: VouchRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        user = request.user
        if not (user.is_authenticated and user.is_staff):
            return None
        grant = getattr(request, "support_grant", None)
        if grant is None:
            # A company page (every one checks an action through the policy) without a
            # live grant: the 404 of a page that is not there, as anyone else gets.
            match = request.resolver_match
            landing = match is not None and match.view_name in LANDING_ROUTES
            if getattr(view_func, "vouch_action", None) is not None and not landing:
                raise Http404
            return None
        if request.path.startswith(OWN_PREFIXES):
            return None
        match = request.resolver_match
        # The route's name, never the path: paths can hold ids and tokens.
        route = (match.view_name if match is not None else "") or "unnamed"
        refused = request.method not in SAFE_METHODS and grant.read_only
        record(
            EventAction.SUPPORT_PAGE_VIEWED,
            request=request,
            company=grant.company_id,
            target=f"route:{route}",
            outcome=Outcome.BLOCKED if refused else Outcome.SUCCESS,
            details={"method": request.method, "grant": str(grant.pk)},
        )
        if refused:
            return render(
                request,
                "web/error.html",
                {
                    "status": 403,
                    "title": "Read-only support access",
                    "message": f"Your support access to {grant.company.name} is read-only: nothing was changed. "
                    "Ask an owner for read and write access if you need to change something.",
                },
                status=403,
            )
        return None
