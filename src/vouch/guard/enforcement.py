"""Company security settings enforced on every company request (P19).

Runs after ``vouch.tenancy.middleware.CompanyMiddleware``, so the current company and
membership are known. One query per company request reads what is needed
(``company_security.snapshot``):

- allowed networks: a member whose address is outside them is refused with a 403 page
  saying why, and a security event is recorded. The address is REMOTE_ADDR as
  ``vouch.core.proxies`` left it: X-Forwarded-For counts only from a trusted proxy.
- two-factor required: a member without 2FA sees a banner with their deadline
  (``request.two_factor_deadline``); after it, company pages redirect to 2FA setup.

Account pages (/accounts/: 2FA setup, password, email, sign-out, sessions) and the
company switcher stay reachable, so a member can always comply or leave."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.guard import company_security, mfa

# Paths a member can always reach: their own account (to set up 2FA, sign out, end
# sessions) and switching to another company. Static files never reach Django's
# company middleware (WhiteNoise answers first).
EXEMPT_PREFIXES = ("/accounts/", "/companies/switch/", "/static/")
NETWORK_EXEMPT_PREFIXES = ("/accounts/logout/", "/companies/switch/")
# Pages opened by a private link (vouch.links) are not the member's company's pages: a
# member may be a candidate or a referee for another company, and the link is checked
# on its own (vouch.links.decorators.link_required).
LINK_PREFIXES = ("/c/", "/r/")


class CompanySecurityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: VouchRequest) -> HttpResponse:
        request.two_factor_deadline = None
        company = getattr(request, "company", None)
        if company is None or request.path.startswith(LINK_PREFIXES):
            return self.get_response(request)
        snap = company_security.snapshot(company.pk)
        address = request.META.get("REMOTE_ADDR", "")
        if snap.allowed_networks and not company_security.address_allowed(address, snap.allowed_networks):
            return self._refuse_network(cast(CompanyRequest, request), address)  # a company is set
        if snap.require_2fa and not mfa.has_2fa(request.user):
            deadline = company_security.two_factor_deadline(snap, request.membership)
            request.two_factor_deadline = deadline
            if timezone.now() >= deadline and not request.path.startswith(EXEMPT_PREFIXES):  # type: ignore[operator]  # typing debt: an Optional not narrowed here
                messages.warning(
                    request,
                    f"{company.name} requires two-factor authentication. Set it up to continue.",
                )
                return redirect("mfa_index")
        return self.get_response(request)

    def _refuse_network(self, request: CompanyRequest, address: str) -> HttpResponse:
        # Signing out and switching to another company stay possible.
        if request.path.startswith(NETWORK_EXEMPT_PREFIXES):
            return self.get_response(request)
        record(
            EventAction.AUTHZ_FAIL,
            request=request,
            target=f"company:{request.company.pk}",
            outcome=Outcome.BLOCKED,
            details={"reason": "address_outside_allowed_networks"},
        )
        return render(
            request,
            "guard/network_refused.html",
            {
                "address": address,
                "company_name": request.company.name,
                "other_memberships": len(request.memberships) > 1,
            },
            status=403,
        )
