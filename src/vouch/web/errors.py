"""Error pages: every error a person can cause is a clear page and a 4xx, never a 500."""

from __future__ import annotations

import sys

import structlog
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.template import loader

log = structlog.get_logger("vouch.errors")

# The methods any page may be asked with. TRACE (it echoes a request back, a cross-site
# tracing aid), CONNECT and unknown methods get 405 before any view runs: function views
# would otherwise answer them like GET.
ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _render(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    context = {"status": status, "title": title, "message": message}
    try:
        html = loader.render_to_string("web/error.html", context, request=request)
    except Exception:  # noqa: BLE001 - an error page must not fail in turn
        # The page's context (the signed-in user, the company bar) needs the very
        # service that failed: the same page, drawn without the request's context.
        log.exception("error_page_degraded", status=status)
        try:
            html = loader.render_to_string("web/error_plain.html", context)
        except Exception:  # noqa: BLE001
            log.exception("error_page_failed", status=status)
            return HttpResponse(f"{title}. {message}\n", status=status, content_type="text/plain; charset=utf-8")
    return HttpResponse(html, status=status)


def is_unavailable(exception: BaseException | None) -> bool:
    """A shared service (Redis) did not answer: a brief outage, not a bug."""
    # imported here: web.redirect (the plain-HTTP listener, run without Django) imports
    # this module, which must stay light
    from vouch.web.rediscache import FAILURES

    return isinstance(exception, FAILURES)


def service_unavailable(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    """503 for a request that needs Redis while it is out (brute-force checks fail closed)."""
    # One line per refused request, with its request id (bound to the log context) and
    # the cause; the Redis client logs the error itself once per outage.
    cause = "key_store" if type(exception).__name__ == "KeyStoreUnavailable" else "redis"
    log.warning("service_unavailable", cause=cause, error=f"{type(exception).__name__}: {exception}")
    match = getattr(request, "resolver_match", None)
    signing_in = bool(match and match.url_name in SIGN_IN_PAGES)
    if signing_in:
        title = "Sign-in is briefly unavailable"
        message = "Vouch cannot check sign-in attempts safely right now, so it accepts none. Try again in a minute."
    else:
        title = "Briefly unavailable"
        message = "Part of Vouch is not answering right now. Try again in a minute."
    response = _render(request, 503, title, message)
    response["Retry-After"] = "60"
    return response


FILES_UNAVAILABLE_MESSAGE = (
    "Vouch cannot reach its file storage right now. Nothing you already saved is lost; "
    "everything else still works. Try again in a minute."
)


def files_unavailable(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    """503 for a request that needed the object store (company files) while it is out."""
    log.warning("service_unavailable", cause="object_store", error=str(exception))
    response = _render(request, 503, "Files are briefly unavailable", FILES_UNAVAILABLE_MESSAGE)
    response["Retry-After"] = "60"
    response._has_been_logged = True  # type: ignore[attr-defined]  # an attribute set at run time  # logged above, without a traceback
    return response


# Pages whose 503 says "sign-in" (their guessing defence is what needs Redis).
SIGN_IN_PAGES = frozenset({"account_login", "mfa_authenticate", "account_signup", "account_reset_password"})


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
    # imported here: web.redirect (the plain-HTTP listener, run without Django) imports
    # this module, which must stay light
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
    log line per interval (``vouch.core.diskfull``) instead of a traceback per request."""
    # imported here: web.redirect (the plain-HTTP listener, run without Django) imports
    # this module, which must stay light
    from vouch.core import diskfull

    diskfull.note_refused(exception, getattr(request, "request_id", None))
    response = _render(request, 503, "Cannot save right now", STORAGE_FULL_MESSAGE)
    response["Retry-After"] = str(diskfull.RETRY_AFTER)
    # Django logs every 5xx from the error handler with its traceback; this one is logged above.
    response._has_been_logged = True  # type: ignore[attr-defined]  # an attribute set at run time
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # imported here: web.redirect (the plain-HTTP listener, run without Django) imports
    # this module, which must stay light
    from vouch.core.diskfull import is_storage_full
    from vouch.objectstore import StoreUnavailable
    from vouch.vault.errors import DecryptionError, KeyUnavailable
    from vouch.vault.keyblobs import KeyStoreUnavailable

    # Django calls this while handling the exception, so it is still at hand.
    exception = sys.exc_info()[1]
    if is_storage_full(exception):
        return storage_full(request, exception)  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
    if is_unavailable(exception):
        return service_unavailable(request, exception)
    if isinstance(exception, StoreUnavailable):
        return files_unavailable(request, exception)
    if isinstance(exception, KeyStoreUnavailable):
        return service_unavailable(request, exception)
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
