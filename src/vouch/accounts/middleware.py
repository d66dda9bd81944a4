"""Idle and absolute session limits, enforced server-side on every request.

The limits are the installation's (VOUCH_SESSION_IDLE_MINUTES / VOUCH_SESSION_MAX_HOURS),
shortened by the strictest company the user belongs to (never lengthened; see
``vouch.guard.company_security.session_limits``). They are kept in the session and
re-read from the companies' settings at sign-in and then at most once a minute, with
the "last seen" write: a company's new, shorter limit applies within a minute without
costing every request a query."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

AUTH_AT = "vouch_auth_at"
SEEN_AT = "vouch_seen_at"
# [idle seconds, absolute seconds] for this session's user, from their companies.
LIMITS = "vouch_limits"
# Refresh "last seen" at most this often: a session write per request would cost
# every page a database write for no security gain.
SEEN_RESOLUTION = 60


def _limits_for(user) -> list[int]:
    from vouch.guard.company_security import session_limits

    return list(session_limits(user))


def start_session_clock(sender, request, user, **kwargs) -> None:
    """At sign-in (after Django has rotated the session key): start both clocks."""
    if request is not None and hasattr(request, "session"):
        request.session[AUTH_AT] = request.session[SEEN_AT] = int(time.time())
        request.session[LIMITS] = _limits_for(user)


class SessionLifetimeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            auth_at = session.get(AUTH_AT)
            seen_at = session.get(SEEN_AT, auth_at)
            idle, absolute = session.get(LIMITS) or (settings.SESSION_IDLE_SECONDS, settings.SESSION_MAX_SECONDS)
            # The installation's limits always hold, whatever the session says.
            idle, absolute = min(idle, settings.SESSION_IDLE_SECONDS), min(absolute, settings.SESSION_MAX_SECONDS)
            if auth_at is None:
                session[AUTH_AT] = session[SEEN_AT] = now
                session[LIMITS] = _limits_for(request.user)
            elif now - auth_at > absolute or now - seen_at > idle:  # type: ignore[operator]  # typing debt: an Optional not narrowed here
                logout(request)  # flushes the session row: the old cookie is dead
                messages.info(request, "Your session ended. Please sign in again.")
            elif now - seen_at >= SEEN_RESOLUTION:  # type: ignore[operator]  # typing debt: an Optional not narrowed here
                from vouch.core.diskfull import StorageFull
                from vouch.guard.sessions import touch

                try:
                    touch(request)
                except StorageFull:
                    # "Last seen" is bookkeeping: on a full disk the page is still shown.
                    # The session is left as it was, so no save follows either; the idle
                    # limit still counts from the last refresh that was stored.
                    return self.get_response(request)
                session[SEEN_AT] = now
                session[LIMITS] = _limits_for(request.user)
        return self.get_response(request)
