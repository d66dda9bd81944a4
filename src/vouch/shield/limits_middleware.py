"""The rate limits and the in-flight cap, as two middleware (P3, docs/security/limits.md).

- :class:`ClientLimitsMiddleware`, early (after the request id, trusted proxies and static
  files, before sessions): the client's address and network, and how many requests the
  address has in progress in this process. It refuses before any session, user or
  company is looked up.
- :class:`AccountLimitsMiddleware`, late (after the current company is known): the
  signed-in account and the company.

A refusal is a short page, 429 with Retry-After, counted in
``vouch.core.metrics.throttled_total`` and recorded as a sampled ``rate_limited``
security event (``vouch.audit.sampling``: at most one per kind and network a minute)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from vouch.audit.models import EventAction, Outcome
from vouch.audit.sampling import record_sampled
from vouch.core import metrics
from vouch.shield import limits
from vouch.shield.limits import Refusal

ROUTE_ATTRIBUTE = "vouch_limits_route"
IN_FLIGHT_RETRY = 1

WHO = {
    "address": "your address",
    "network": "your network",
    "account": "your account",
    "company": "your company",
    "in_flight": "your address (requests still in progress)",
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many requests</title></head>
<body><h1>Too many requests</h1>
<p>Vouch limits how many requests come from one place at a time, so that it stays quick for
everyone. Too many came from {who} just now.</p>
<p>Try again in {seconds} second{plural}.</p></body></html>
"""


def too_many(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """The 429 page; the refusal counted and (sampled) recorded."""
    metrics.throttled_total.labels(route_class=refusal.route_class, scope=refusal.scope).inc()
    record_sampled(
        EventAction.RATE_LIMITED,
        request=request,
        kind=f"rate_limited:{refusal.route_class}:{refusal.scope}",
        target=f"route_class:{refusal.route_class}",
        outcome=Outcome.BLOCKED,
        details={"route_class": refusal.route_class, "scope": refusal.scope, "limit": refusal.limit},
    )
    seconds = refusal.retry_after
    body = PAGE.format(who=escape(WHO[refusal.scope]), seconds=seconds, plural="" if seconds == 1 else "s")
    response = HttpResponse(body, status=429, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(seconds)
    # Refused before the middleware that adds these: the page needs nothing, so it allows nothing.
    response["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    response["X-Frame-Options"] = "DENY"
    return response


class ClientLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.exempt = tuple(getattr(settings, "VOUCH_RATE_LIMIT_EXEMPT", ()))
        self.in_flight_cap = int(getattr(settings, "VOUCH_CLIENT_IN_FLIGHT", 0))
        # address -> requests in progress in this process
        self.in_flight: dict[str, int] = {}
        self.lock = threading.Lock()
        limits.table()  # a malformed VOUCH_RATE_LIMITS stops the server at its start, not at a request

    def __call__(self, request: HttpRequest) -> HttpResponse:
        route = limits.route_class(request)
        if route in limits.UNLIMITED or limits.table() is None:
            return self.get_response(request)
        setattr(request, ROUTE_ATTRIBUTE, route)
        remote = request.META.get("REMOTE_ADDR") or ""
        if limits.is_exempt(remote, self.exempt):
            return self.get_response(request)
        parsed = limits.address_and_network(remote)
        address, network = parsed if parsed is not None else ("unknown", "unknown")
        refusal = limits.check(route, {"address": address, "network": network})
        if refusal is not None:
            return too_many(request, refusal)
        if not self.in_flight_cap:
            return self.get_response(request)
        with self.lock:
            held = self.in_flight.get(address, 0)
            if held < self.in_flight_cap:
                self.in_flight[address] = held + 1
        if held >= self.in_flight_cap:
            return too_many(request, Refusal(route, "in_flight", self.in_flight_cap, IN_FLIGHT_RETRY))
        try:
            return self.get_response(request)
        finally:
            with self.lock:
                left = self.in_flight.get(address, 1) - 1
                if left > 0:
                    self.in_flight[address] = left
                else:
                    self.in_flight.pop(address, None)


class AccountLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        route = getattr(request, ROUTE_ATTRIBUTE, None)
        if route is None:  # not limited (a probe, a static file) or limits are off
            return self.get_response(request)
        scopes = {}
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            scopes["account"] = str(user.pk)
        company = getattr(request, "company", None)
        if company is not None:
            scopes["company"] = str(company.pk)
        if scopes:
            refusal = limits.check(route, scopes)
            if refusal is not None:
                return too_many(request, refusal)
        return self.get_response(request)
