"""``link_required(purpose)``: the one entry point of pages opened by a private link
(``/c/<token>/...`` for candidates, ``/r/<token>/...`` for referees).

In order, for every request:

1. the client address's throttle is checked *before* the token is looked at
   (``vouch.guard.throttle.check_code``, purpose ``"link"``: 10 free failures per
   address and 50 per network (IPv4 /24, IPv6 /64), then growing delays), so guessing
   is slow. A held address or network still lets a real link through (its wrong
   tokens get the held 429 page, counted as no failure): one guesser behind a shared
   or carrier-grade NAT address cannot lock out the candidates and referees on it, and
   a 256-bit token is no easier to guess for it. A flood is still stopped: after
   ``throttle.HELD_GUESS_CAP`` wrong tokens in a minute from a held scope, nothing
   from it is looked up until that minute (or the hold) ends;
2. the token is resolved (one indexed lookup of its hash);
3. a token that does not exist (a guess) is recorded as a ``link_invalid`` security
   event (target: the first 8 hex characters of the token's hash, never the token;
   sampled per network, ``vouch.audit.sampling``) and counted against the address;
   it gets the neutral 404 page, byte for byte the same whatever the token;
4. a real token whose link is no longer in use (withdrawn, replaced, its request
   closed, expired, its company closed) is never a guess: it is not counted, and it
   gets its own page, ``ended_response`` (410, no personal data, nothing to change);
   a real token on the other purpose's address gets the neutral page, uncounted;
5. a valid link: its company becomes current for the view, ``request.link`` is the
   :class:`~vouch.links.services.ResolvedLink`, its use is counted.

Every response, refusals included, gets ``Referrer-Policy: same-origin`` and
``Cache-Control: no-store``: the token is in the address, and must not leak through
the Referer of a followed link to another site or sit in a shared cache. Not
``no-referrer``: with it, browsers send ``Origin: null`` on a form POST, and Django's
CSRF check (rightly) refuses every form on the link pages. The view is called without
the token; ``request.link.token`` has it for links to sibling pages.

A valid link's response also carries ``__Host-vouch_link_device``, a random 128-bit id
for the browser (set when absent; ``request.vouch_link_device`` has it for the view, from
the first visit on). It says nothing about the person or their machine; the fraud
checks keep only a per-company blind index of it, to notice two people on one browser."""

from __future__ import annotations

import functools
import logging
import math
import re
import secrets
from collections.abc import Callable

from django.http import HttpResponse
from django.template import loader
from django.utils.cache import add_never_cache_headers

from vouch.audit.events import PLATFORM
from vouch.audit.models import EventAction, Outcome
from vouch.audit.sampling import record_sampled
from vouch.core.context import company_context
from vouch.core.requests import LinkRequest
from vouch.guard import throttle
from vouch.links import services
from vouch.links.models import Link, Purpose
from vouch.shield import state as shield_state
from vouch.shield.middleware import blocked_response

log = logging.getLogger("vouch.links")

THROTTLE_PURPOSE = "link"
NEUTRAL_TEMPLATE = "links/neutral.html"
ENDED_TEMPLATE = "links/ended.html"
# Refusals of a real token: the link existed and has ended. Not a guess.
ENDED_REASONS = frozenset({"revoked", "expired", "company_inactive"})
DEVICE_COOKIE = "__Host-vouch_link_device"
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16): 128 bits


def _private(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    add_never_cache_headers(response)  # includes no-store
    return response


def neutral_response(*, throttled: bool = False, retry_after: int = 0) -> HttpResponse:
    """The one page every refused link gets. Rendered without the request, so nothing
    that varies per visitor (a CSRF token, a session) can make two refusals differ."""
    html = loader.render_to_string(NEUTRAL_TEMPLATE, {"throttled": throttled})
    response = HttpResponse(html, status=429 if throttled else 404)
    if throttled:
        response["Retry-After"] = str(max(1, retry_after))
    return _private(response)


def ended_response() -> HttpResponse:
    """The page of a real link that is no longer in use (withdrawn, replaced, its
    request closed or expired): 410 Gone, since what it opened is gone and will not come
    back at this address. Nothing personal (no company, candidate or referee name: an
    old link may sit in a forwarded email), nothing to change, and rendered without the
    request, like the neutral page."""
    return _private(HttpResponse(loader.render_to_string(ENDED_TEMPLATE), status=410))


def _record_refusal(request: LinkRequest, purpose: str, raw: str, reason: str, link: Link | None) -> None:
    # Sampled per network and kind: anyone can send links without signing in.
    record_sampled(
        EventAction.LINK_INVALID,
        request=request,
        kind="link_guess" if link is None else "link_real",
        company=link.company_id if link is not None else PLATFORM,
        target=f"link:{services.hash_token(raw)[:8]}",
        outcome=Outcome.FAILURE,
        details={"purpose": purpose, "reason": reason},
    )


def _link_device(request: LinkRequest) -> tuple[str, bool]:
    """This browser's link-device id, and whether it is new (so the cookie must be set).
    A malformed cookie is replaced: it is attacker input."""
    raw = request.COOKIES.get(DEVICE_COOKIE, "")
    if _DEVICE_ID.fullmatch(raw):
        return raw, False
    return secrets.token_urlsafe(16), True


def _set_device_cookie(response: HttpResponse, device_id: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        device_id,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",  # required by the __Host- prefix, as are Secure and no Domain
        secure=True,
        httponly=True,
        samesite="Lax",
    )


def link_required(purpose: str) -> Callable:
    if purpose not in Purpose.values:
        raise ValueError(f"unknown link purpose {purpose!r}")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: LinkRequest, token: str, *args, **kwargs) -> HttpResponse:
            try:
                hold = throttle.check_code(request, THROTTLE_PURPOSE, defer_holds=True)
            except throttle.Throttled as refused:
                return neutral_response(throttled=True, retry_after=refused.retry_after)
            resolved, reason, link = services.check(token, purpose)
            if resolved is None:
                if link is not None:  # a real token: never counted as a guess
                    _record_refusal(request, purpose, token, reason, link)
                    return ended_response() if reason in ENDED_REASONS else neutral_response()
                block = getattr(request, "shield_block", None)
                if block is not None:  # a guess from a blocked source: the block's answer
                    return blocked_response(block, shield_state.now())
                if hold:  # a guess while held: refused, counted toward the flood cap only
                    throttle.held_guess(request, THROTTLE_PURPOSE)
                    return neutral_response(throttled=True, retry_after=math.ceil(hold))
                _record_refusal(request, purpose, token, reason, link)
                throttle.code_failed(request, THROTTLE_PURPOSE)
                return neutral_response()
            services.record_use(resolved)
            request.link = resolved
            request.vouch_link_device, new_device = _link_device(request)
            with company_context(resolved.company):
                response = view(request, *args, **kwargs)
                # A lazily rendered response must render while the company's database
                # is still reachable.
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
            # Not on a 4xx: a view's own neutral page (a cancelled request's link) must not
            # differ from a refused link's by a cookie.
            if new_device and response.status_code < 400:
                _set_device_cookie(response, request.vouch_link_device)
            return _private(response)

        wrapper.vouch_link_purpose = purpose  # type: ignore[attr-defined]  # an attribute set at run time  # found by the URL matrices in tests/
        return wrapper

    return decorator
