"""Error pages: every error a person can cause is a clear page and a 4xx, never a 500."""

from __future__ import annotations

import sys

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.template import loader

# The methods any page may be asked with. TRACE (it echoes a request back, a cross-site
# tracing aid), CONNECT and unknown methods get 405 before any view runs: function views
# would otherwise answer them like GET.
ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _render(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    html = loader.render_to_string(
        "web/error.html", {"status": status, "title": title, "message": message}, request=request
    )
    return HttpResponse(html, status=status)


def payload_too_large(request: HttpRequest) -> HttpResponse:
    return _render(
        request, 413, "Too much data", "The request was larger than Vouch accepts. Send less data and try again."
    )


def method_not_allowed(request: HttpRequest) -> HttpResponse:
    response = _render(request, 405, "Not allowed", "Vouch does not answer that kind of request.")
    response["Allow"] = ", ".join(sorted(ALLOWED_METHODS))
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Django turns an over-long body that declared no length into RequestDataTooBig (a
    # SuspiciousOperation, hence 400); it is still "too large" to the person sending it.
    if isinstance(exception, (RequestDataTooBig, TooManyFieldsSent)):
        return payload_too_large(request)
    return _render(request, 400, "Bad request", "Vouch could not understand that request.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Every 403 (policy.require and the rest) is a security event. Recorded here, after
    # the view's transaction has rolled back, so the refusal itself is never lost.
    from vouch.audit.events import record_refusal

    record_refusal(request, reason="policy")
    return _render(request, 403, "Not allowed", "Your role in this company does not allow that.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, 404, "Not found", "There is nothing here, or it is not yours to see.")


STORAGE_FULL_MESSAGE = (
    "Vouch cannot save right now: its storage is full. Nothing you already saved is lost; try again later."
)


def storage_full(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """A write that could not be stored for lack of space: a 503 that says so, and one
    log line per interval (``vouch.web.diskfull``) instead of a traceback per request."""
    from vouch.web import diskfull

    diskfull.note_refused(exception, getattr(request, "request_id", None))
    response = _render(request, 503, "Cannot save right now", STORAGE_FULL_MESSAGE)
    response["Retry-After"] = str(diskfull.RETRY_AFTER)
    # Django logs every 5xx from the error handler with its traceback; this one is logged above.
    response._has_been_logged = True
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    from vouch.vault.errors import DecryptionError, KeyUnavailable
    from vouch.web.diskfull import is_storage_full

    # Django calls this while handling the exception, so it is still at hand.
    exception = sys.exc_info()[1]
    if is_storage_full(exception):
        return storage_full(request, exception)
    if isinstance(exception, (DecryptionError, KeyUnavailable)):
        # Encrypted data that does not authenticate is never shown; say why the page is
        # missing rather than "try again" (it will fail the same way until it is restored).
        return _render(
            request,
            500,
            "This data cannot be shown",
            "Part of this page failed its integrity check, so Vouch will not display it. "
            "The failure has been recorded for your administrators.",
        )
    return _render(request, 500, "Something went wrong", "The error has been logged. Please try again.")
