"""Request-wide concerns: request id, request log, body-size cap, Permissions-Policy, caching."""

from __future__ import annotations

import time
import uuid

import structlog
from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.cache import add_never_cache_headers

from vouch.api.middleware import API_PREFIX, as_problem
from vouch.core import metrics, proxies
from vouch.core.requests import VouchRequest
from vouch.objectstore import StoreUnavailable
from vouch.shield import detection
from vouch.vault.keyblobs import KeyStoreUnavailable
from vouch.web.errors import (
    ALLOWED_METHODS,
    files_unavailable,
    is_unavailable,
    method_not_allowed,
    payload_too_large,
    service_unavailable,
)

# Load balancers' probes: their cookies are dropped before anything reads them, so a
# session cookie cannot make /livez depend on Redis or the database (it touches nothing).
PROBE_PATHS = metrics.HEALTH_PROBES

log = structlog.get_logger("vouch.request")


class RequestContextMiddleware:
    """Outermost middleware: binds a request id to every log line of the request,
    drops forwarded headers not sent by a trusted proxy, refuses declared oversized
    bodies before anything reads them, and logs one line per request with the route
    pattern (never the raw path, which may hold a token)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.max_body = settings.VOUCH_MAX_BODY_BYTES
        self.permissions_policy = settings.PERMISSIONS_POLICY
        self.trusted_proxies = tuple(settings.VOUCH_TRUSTED_PROXIES)
        # The answers made here (405, 413, a bad Content-Length) and those made where an
        # error is raised inside the stack (400 for an unknown Host) never pass through the
        # middleware that adds the security headers further in: every response passes
        # through them again here. Each adds only a header the response lacks (make attack,
        # the headers step).
        self.security_headers = (SecurityMiddleware(get_response), XFrameOptionsMiddleware(get_response))
        # django-csp builds its header text (twice: enforced and report-only) before it
        # looks whether the response has one: asked only of a response without one.
        self.csp = CSPMiddleware(get_response)

    def __call__(self, request: VouchRequest) -> HttpResponse:
        if request.path in PROBE_PATHS:
            # No session, no user, no CSRF token: a probe's answer depends only on what it checks.
            request.COOKIES = {}
        request_id = uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        proxies.apply(request.META, self.trusted_proxies)
        declared = request.META.get("CONTENT_LENGTH") or "0"
        # isascii(): str.isdigit() also accepts digits like "²" that int() rejects.
        if request.method not in ALLOWED_METHODS:
            # Refused here, before the shield's middleware runs: it is told (TRACE, PROPFIND...).
            detection.detect(request, "method", detail=str(request.method)[:16])
            response = method_not_allowed(request)
        elif not (declared.isascii() and declared.isdigit()):
            detection.detect(request, "bad_request", detail="Content-Length")
            response = HttpResponse("Bad Content-Length", status=400, content_type="text/plain")
        elif int(declared) > self.max_body:
            response = payload_too_large(request)
        else:
            try:
                response = self.get_response(request)
            except Exception:
                # Django turns errors into responses below this point; one escaping it (an
                # error page that failed in turn) is still logged, with this request's line.
                log.exception("unhandled_error")
                response = HttpResponse(
                    "Something went wrong. The error has been logged.\n",
                    status=500,
                    content_type="text/plain; charset=utf-8",
                )
        if request.path.startswith(API_PREFIX):
            # The API answers every error as problem details, those made out here too
            # (413, 405, a bad Content-Length, the rate limits' 429).
            response = as_problem(response)
        if request.method == "HEAD":
            _drop_body(response)
        response["X-Request-ID"] = request_id
        response.setdefault("Permissions-Policy", self.permissions_policy)
        for middleware in self.security_headers:
            response = middleware.process_response(request, response)
        if CSP_HEADER not in response:
            response = self.csp.process_response(request, response)
        # Pages hold other people's personal data: no browser or shared cache may keep
        # them. Static files (WhiteNoise) set their own long-lived Cache-Control first.
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        match = getattr(request, "resolver_match", None)
        # A request intrusion detection refused is marked, so an attack's log shows when
        # detection set in (make attack measures it: attack/detection.py).
        blocked = {"blocked": True} if response.has_header("X-Vouch-Blocked") else {}
        log.info(
            "request",
            method=request.method,
            route=match.route if match else None,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 2),
            **blocked,
        )
        return response

    def process_exception(self, request: VouchRequest, exception: Exception) -> HttpResponse | None:
        # A view that needed Redis while it is out (the brute-force throttle fails closed).
        if is_unavailable(exception):
            return service_unavailable(request, exception)
        # A company's files were needed while its region's bucket is out.
        if isinstance(exception, StoreUnavailable):
            return files_unavailable(request, exception)
        # A company's keys were needed while the key store (a bucket) is out: nothing is
        # taken as missing, the request is refused until it answers again.
        if isinstance(exception, KeyStoreUnavailable):
            return service_unavailable(request, exception)
        return None


def _drop_body(response: HttpResponse) -> None:
    """A HEAD response carries the GET response's headers (Content-Length included) and no
    body (RFC 9110, 9.3.2). Django leaves that to the server; granian strips it over
    HTTP/1.1 but sends it as DATA frames over HTTP/2, which clients treat as a protocol
    error. So the body goes here, once, for every server and protocol."""
    if response.streaming:
        # The file behind a FileResponse stays registered and is closed with the response.
        response.streaming_content = iter(())  # type: ignore[attr-defined]  # typing debt
        return
    length = response.get("Content-Length") or str(len(response.content))
    response.content = b""
    response["Content-Length"] = length
