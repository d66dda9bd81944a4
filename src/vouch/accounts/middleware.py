"""Idle and absolute session limits, enforced server-side on every request."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

AUTH_AT = "vouch_auth_at"
SEEN_AT = "vouch_seen_at"
# Refresh "last seen" at most this often: a session write per request would cost
# every page a database write for no security gain.
SEEN_RESOLUTION = 60


def start_session_clock(sender, request, user, **kwargs) -> None:
    """At sign-in (after Django has rotated the session key): start both clocks."""
    if request is not None and hasattr(request, "session"):
        request.session[AUTH_AT] = request.session[SEEN_AT] = int(time.time())


class SessionLifetimeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            auth_at = session.get(AUTH_AT)
            seen_at = session.get(SEEN_AT, auth_at)
            if auth_at is None:
                session[AUTH_AT] = session[SEEN_AT] = now
            elif now - auth_at > settings.SESSION_MAX_SECONDS or now - seen_at > settings.SESSION_IDLE_SECONDS:
                logout(request)  # flushes the session row: the old cookie is dead
                messages.info(request, "Your session ended. Please sign in again.")
            elif now - seen_at >= SEEN_RESOLUTION:
                session[SEEN_AT] = now
        return self.get_response(request)
