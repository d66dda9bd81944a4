"""Every error of the API in one shape: RFC 9457 problem details
(``application/problem+json``): ``type``, ``title``, ``status``, ``detail``, and for
invalid input ``errors`` (where and what)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://vouch.invalid/problems/"  # a stable identifier, not a page (docs/api/errors.md)

TYPES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "too-many-requests",
    500: "server-error",
    503: "unavailable",
}


def problem(
    status: int, detail: str = "", *, errors: list[dict[str, Any]] | None = None, **headers: str
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + TYPES.get(status, "error"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
    }
    if errors:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
