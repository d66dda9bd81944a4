"""The API's front door, for every path under /api/ (placed before the session
middleware):

- session cookies are dropped before anything reads them: the API takes keys only, so a
  page open in a browser cannot be made to call it (and CSRF does not arise);
- a body too large (413) or not JSON (415) is refused before any work;
- the key in ``Authorization: Bearer`` is checked (``keys.services.check``) and its
  company's context entered for the rest of the call (the key names its company, so no
  look-up across companies); a POST with ``Idempotency-Key`` goes through
  ``vouch.api.idempotency``;
- whatever answers an error (Django's 404 and 500 pages, a 405) answers it as problem
  details."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from vouch.abuse import throttle as abuse_throttle
from vouch.abuse.rules import API_REQUEST
from vouch.api import idempotency
from vouch.api.keys import services
from vouch.api.problems import CONTENT_TYPE, problem
from vouch.audit import observers
from vouch.core.context import CompanyOffline, company_context

log = logging.getLogger("vouch.api")

API_PREFIX = "/api/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def as_problem(response: HttpResponse) -> HttpResponse:
    if response.status_code < 400 or response.get("Content-Type", "").startswith(CONTENT_TYPE):
        return response
    replacement = problem(response.status_code)
    for header in KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement


def unauthenticated(detail: str) -> HttpResponse:
    return problem(401, detail, WWW_Authenticate='Bearer realm="vouch"')


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        request.COOKIES = {}
        request.META.pop("HTTP_COOKIE", None)
        request.api_caller = None  # type: ignore[attr-defined]
        return as_problem(self._call(request))

    def _call(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem(400, "Content-Length is not a number.")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return problem(413, f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
        if request.method in BODY_METHODS and length:
            content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return problem(415, "Send the body as application/json.")
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            # Open documents (the OpenAPI document, the reference page) answer; every
            # operation refuses a call without a key (vouch.api.v1.KeyAuth).
            return self.get_response(request)
        scheme, _, token = header.partition(" ")
        parsed = services.parse(token) if scheme.lower() == "bearer" else None
        if parsed is None:
            return unauthenticated("Send an API key as Authorization: Bearer <key>.")
        company = services.company_for(parsed)
        if company is None:
            return unauthenticated("The API key is not valid.")
        try:
            with company_context(company):
                try:
                    caller = services.check(request, parsed, company)
                except services.KeyRefused as refused:
                    if refused.status == 429:
                        return problem(429, refused.detail, Retry_After=str(refused.retry_after))
                    return unauthenticated(refused.detail)
                request.api_caller = caller  # type: ignore[attr-defined]
                # The shield scores and blocks this call as its key's creator's, never as its
                # address's (vouch.shield.detection.signed_in_user_id).
                request.acting_user_id = caller.membership.user_id  # type: ignore[attr-defined]
                # Abuse monitoring (P18) counts every call towards the key creator's hourly
                # API rule; an account it throttled is refused here, reads included: a key
                # used far beyond its normal is what the rule is for.
                observers.heard(API_REQUEST, request=request, actor_id=caller.membership.user_id, company_id=company.pk)
                wait = abuse_throttle.seconds_left(caller.membership.user_id)
                if wait:
                    return problem(
                        429,
                        "This key's account made unusually many calls and is paused for a while; "
                        "the company's owners have been told.",
                        Retry_After=str(wait),
                    )
                if request.method == "POST":
                    return idempotency.handle(request, self.get_response)
                return self.get_response(request)
        except CompanyOffline:
            return problem(503, "The company is offline for maintenance; retry later.", Retry_After="60")
