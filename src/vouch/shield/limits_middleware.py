"""The rate limits and the in-flight cap, as two middleware (P3, docs/security/limits.md).

- :class:`ClientLimitsMiddleware`, early (after the request id, trusted proxies and static
  files, before sessions): the client's address and network, how many requests the
  address has in progress in this process, and, for a request with no session cookie and
  no API key (surely not signed in), how many such requests are in progress in this
  process. It refuses before any session, user or company is looked up.
- :class:`AccountLimitsMiddleware`, late (after the current company is known): the
  signed-in account and the company, how many requests the account has in progress in
  this process, and the in-progress cap of those not signed in for a request whose
  session cookie turned out to sign no one in.

Why the cap on those not signed in: a server process has a few threads
(``VOUCH_THREADS``); requests from people not signed in (the sign-in page, private
links) may hold all of them but one, so a signed-in member's request always finds a
thread, whatever a flood from many addresses sends. A member's request is never refused
for others' traffic: only their own account's requests in progress count against them.

Requests of people not signed in, and of an account refused for too many at once (for ten
seconds after), are of low priority: in each process they run one at a time
(:mod:`vouch.shield.priority`), so a flood shares the interpreter with a member's request
one request at a time, not a thread's worth.

A refusal is a short page, 429 with Retry-After, counted in
``vouch.core.metrics.throttled_total`` and recorded as a sampled ``rate_limited``
security event (``vouch.audit.sampling``: at most one per kind and network a minute)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from vouch.audit.models import EventAction, Outcome
from vouch.audit.sampling import record_sampled
from vouch.core import metrics
from vouch.shield import limits, priority
from vouch.shield.limits import Refusal

ROUTE_ATTRIBUTE = "vouch_limits_route"
ANONYMOUS_ATTRIBUTE = "vouch_limits_anonymous"  # the request holds a place of those not signed in
GATED_ATTRIBUTE = "vouch_limits_gated"  # the request runs at low priority already
EXEMPT_ATTRIBUTE = "vouch_limits_exempt"  # VOUCH_RATE_LIMIT_EXEMPT: no in-flight cap of the client's
IN_FLIGHT_RETRY = 1
# The one key all requests of people not signed in share, with those of accounts that lost
# their standing (vouch.shield.priority): low priority never holds the last thread.
ANONYMOUS = "*"

WHO = {
    "address": "your address",
    "network": "your network",
    "account": "your account",
    "company": "your company",
    "in_flight": "your address (requests still in progress)",
    "account_in_flight": "your account (requests still in progress)",
    "anonymous_in_flight": "visitors who are not signed in (requests still in progress); signing in is not affected",
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


# One per server process, shared by both middleware: a request not signed in takes its
# place early when it has no session cookie, late when its cookie signed no one in.
in_flight = limits.InFlight()


def _in_flight_refusal(route: str, scope: str, cap: int) -> Refusal:
    return Refusal(route, scope, cap, IN_FLIGHT_RETRY, 0)


def _holding(key: str, get_response: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> HttpResponse:
    """The response, with ``key``'s place (taken by the caller) given back after it."""
    try:
        return get_response(request)
    finally:
        in_flight.give_back(key)


def _surely_anonymous(request: HttpRequest) -> bool:
    """No session cookie and no API key: nobody can be signed in (read before sessions)."""
    return settings.SESSION_COOKIE_NAME not in request.COOKIES and "HTTP_AUTHORIZATION" not in request.META


class ClientLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.exempt = tuple(getattr(settings, "VOUCH_RATE_LIMIT_EXEMPT", ()))
        self.in_flight_cap = int(getattr(settings, "VOUCH_CLIENT_IN_FLIGHT", 0))
        self.anonymous_cap = int(getattr(settings, "VOUCH_ANONYMOUS_IN_FLIGHT", 0))
        limits.table()  # a malformed VOUCH_RATE_LIMITS stops the server at its start, not at a request
        limits.burst_table()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        route = limits.route_class(request)
        if route in limits.UNLIMITED or limits.table() is None:
            return self.get_response(request)
        setattr(request, ROUTE_ATTRIBUTE, route)
        remote = request.META.get("REMOTE_ADDR") or ""
        if limits.is_exempt(remote, self.exempt):
            setattr(request, EXEMPT_ATTRIBUTE, True)
            return self.get_response(request)
        parsed = limits.address_and_network(remote)
        address, network = parsed if parsed is not None else ("unknown", "unknown")
        refusal = limits.check(route, {"address": address, "network": network})
        if refusal is not None:
            return too_many(request, refusal)
        if _surely_anonymous(request):
            return _not_signed_in(request, self.get_response, self.anonymous_cap, self.in_flight_cap)
        session = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if session and not priority.standing.good_session(session):
            # The session of an account that lost its standing: low priority before its
            # session, user and company are looked up (what a flood of it would cost).
            return _without_standing(request, self.get_response, self.anonymous_cap)
        # A member's request is not counted by address: colleagues behind one office address
        # are not refused for each other's pages (their accounts' own caps apply).
        return self.get_response(request)


def _not_signed_in(
    request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse], anonymous_cap: int, address_cap: int
) -> HttpResponse:
    """A request of someone not signed in: one of the places of everyone not signed in
    (``anonymous_cap``, all addresses together), then one of its address's (``address_cap``),
    then its turn at low priority."""

    def run(held: HttpRequest) -> HttpResponse:
        return _per_address(held, lambda placed: _low_priority(placed, get_response), address_cap)

    if not anonymous_cap:
        return run(request)
    if not in_flight.take(ANONYMOUS, anonymous_cap):
        return too_many(request, _in_flight_refusal(_route(request), "anonymous_in_flight", anonymous_cap))
    setattr(request, ANONYMOUS_ATTRIBUTE, True)
    return _holding(ANONYMOUS, run, request)


def _low_priority(
    request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse], who: str = "anonymous"
) -> HttpResponse:
    """The response, made in a turn of the process's low-priority gate (vouch.shield.priority);
    ``who``: anonymous, or an account that lost its standing (counted in the metrics)."""
    at_once = int(getattr(settings, "VOUCH_LOW_PRIORITY_AT_ONCE", 0))
    if at_once <= 0:
        return get_response(request)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isascii() and declared.isdigit() and int(declared) > 0:
        # The body is read before the turn (it is at most VOUCH_MAX_BODY_BYTES, checked
        # earlier): one sent a few bytes a second holds its places, never the turn.
        request.body  # noqa: B018
    wait = int(getattr(settings, "VOUCH_LOW_PRIORITY_WAIT_MS", 250)) / 1000
    with priority.gate.turn(at_once, wait) as in_turn:
        metrics.low_priority_total.labels(who=who, ran="turn" if in_turn else "anyway").inc()
        return get_response(request)


def _per_address(
    request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse], address_cap: int
) -> HttpResponse:
    if not address_cap:
        return get_response(request)
    key = "a:" + (request.META.get("REMOTE_ADDR") or "").strip()
    if not in_flight.take(key, address_cap):
        return too_many(request, _in_flight_refusal(_route(request), "in_flight", address_cap))
    return _holding(key, get_response, request)


def _without_standing(
    request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse], anonymous_cap: int
) -> HttpResponse:
    """A request of an account that lost its standing: one of the low-priority places
    (those of people not signed in), then its turn at low priority."""
    setattr(request, GATED_ATTRIBUTE, True)
    if not anonymous_cap:
        return _low_priority(request, get_response, "account")
    if not in_flight.take(ANONYMOUS, anonymous_cap):
        return too_many(request, _in_flight_refusal(_route(request), "account_in_flight", anonymous_cap))
    setattr(request, ANONYMOUS_ATTRIBUTE, True)
    return _holding(ANONYMOUS, lambda held: _low_priority(held, get_response, "account"), request)


def _route(request: HttpRequest) -> str:
    return getattr(request, ROUTE_ATTRIBUTE)


class AccountLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.account_cap = int(getattr(settings, "VOUCH_ACCOUNT_IN_FLIGHT", 0))
        self.anonymous_cap = int(getattr(settings, "VOUCH_ANONYMOUS_IN_FLIGHT", 0))
        self.address_cap = int(getattr(settings, "VOUCH_CLIENT_IN_FLIGHT", 0))

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
        if "account" in scopes:
            if not self.account_cap:
                return self.get_response(request)
            account = scopes["account"]
            key = "u:" + account
            if not in_flight.take(key, self.account_cap):
                # More at once than a person's browser sends: low priority for a while.
                priority.standing.lose(account, request.COOKIES.get(settings.SESSION_COOKIE_NAME))
                return too_many(request, _in_flight_refusal(route, "account_in_flight", self.account_cap))
            # Gated already (known by its session), or in good standing: runs as it is.
            if getattr(request, GATED_ATTRIBUTE, False) or priority.standing.good(account):
                return _holding(key, self.get_response, request)
            return _holding(key, lambda held: _without_standing(held, self.get_response, self.anonymous_cap), request)
        # A session cookie that signs no one in (expired, or made up to pass for a member's),
        # now known not signed in. An API call is its key's (vouch.api).
        if (
            self.anonymous_cap
            and not getattr(request, ANONYMOUS_ATTRIBUTE, False)
            and not getattr(request, EXEMPT_ATTRIBUTE, False)
            and getattr(request, "acting_user_id", None) is None
            and settings.SESSION_COOKIE_NAME in request.COOKIES
        ):
            return _not_signed_in(request, self.get_response, self.anonymous_cap, self.address_cap)
        return self.get_response(request)
