"""The throttle response: for ``SECONDS`` the account's changes (any request but GET,
HEAD and OPTIONS, and signing out) are answered 429. A flag in the cache, checked by
``ThrottleMiddleware`` (one cache read per change by a signed-in account)."""

from __future__ import annotations

import math
import time

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse

from vouch.core import metrics

SECONDS = 15 * 60
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _key(user_id: int) -> str:
    return f"ab:t:{user_id}"


def throttle(user_id: int, seconds: int = SECONDS) -> None:
    cache.set(_key(user_id), time.time() + seconds, timeout=seconds)


def lift(user_id: int) -> None:
    cache.delete(_key(user_id))


def seconds_left(user_id: int) -> int:
    until = cache.get(_key(user_id))
    return max(0, math.ceil(until - time.time())) if until else 0


def throttled(request: HttpRequest) -> int:
    """Seconds this request's account stays throttled, for a change; 0 when it may go on."""
    if request.method in SAFE:
        return 0
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path == reverse("account_logout"):
        return 0
    return seconds_left(user.pk)


class ThrottleMiddleware:
    """After authentication. Its own middleware: vouch.shield sits below this package's
    layer and cannot ask it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        wait = throttled(request)
        if wait:
            metrics.throttled_total.labels(route_class=metrics.route_class(request), scope="account").inc()
            html = render_to_string(
                "web/error.html",
                {
                    "status": 429,
                    "title": "Please slow down",
                    "message": "This account did something unusually often, so its changes are paused for a while. "
                    "Your company's owners have been told. Try again later.",
                },
                request=request,
            )
            return HttpResponse(html, status=429, headers={"Retry-After": str(wait)})
        return self.get_response(request)
