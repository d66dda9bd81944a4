"""Sets the current company of a request, only after authentication and a
membership check. What a member sees is always the current company's."""

from __future__ import annotations

from django.http import HttpResponse

from vouch.core.context import CompanyOffline, company_context
from vouch.core.requests import VouchRequest
from vouch.tenancy import signals
from vouch.tenancy.maintenance import maintenance_response
from vouch.tenancy.services import SESSION_COMPANY_KEY, choose_membership, current_memberships

# Pages an offline company's members may still open.
OFFLINE_ALLOWED = frozenset({"account_logout", "company_switch"})


def _resolve(path: str):
    from django.urls import Resolver404, resolve

    try:
        return resolve(path)
    except Resolver404:
        return None


class CompanyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: VouchRequest) -> HttpResponse:
        request.membership = None
        request.company = None
        request.memberships = []
        user = request.user
        if user.is_authenticated and not user.is_staff:
            # Checked on every request, so a deactivated member (or company) loses
            # access at once. One query for all the user's companies: the switcher
            # needs them too.
            request.memberships = current_memberships(user)
            membership = choose_membership(request.memberships, request.session.get(SESSION_COMPANY_KEY))
            if membership is not None:
                request.membership = membership
                request.company = membership.company
                if request.session.get(SESSION_COMPANY_KEY) != str(membership.company_id):
                    request.session[SESSION_COMPANY_KEY] = str(membership.company_id)
        elif user.is_authenticated and signals.support_membership is not None:
            # An operator: in a company only through a live support grant (vouch.support).
            membership = signals.support_membership(request)
            if membership is not None:
                request.membership, request.company, request.memberships = membership, membership.company, [membership]
        if request.company is None:
            return self.get_response(request)
        if request.company.is_offline:
            # Restored in place right now: a maintenance page, except signing out and
            # switching to another of the member's companies (they need no company).
            match = getattr(request, "resolver_match", None) or _resolve(request.path_info)
            if match is None or match.url_name not in OFFLINE_ALLOWED:
                return maintenance_response()
            request.company = request.membership = None
            return self.get_response(request)
        # Company data is reachable only inside this context; it ends (and the
        # company's database connection closes) with the request.
        with company_context(request.company):
            return self.get_response(request)

    def process_exception(self, request: VouchRequest, exception: Exception) -> HttpResponse | None:
        # A private link (or any code) reaching a company that is offline for maintenance.
        if isinstance(exception, CompanyOffline):
            return maintenance_response()
        return None
