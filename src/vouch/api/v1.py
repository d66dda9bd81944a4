"""Version 1 of the REST API (django-ninja: typed schemas, an OpenAPI 3.1 document).

The operations are thin: each checks its key's scope, finds what it names through the
same access functions as the member pages (another company's id, or one outside the
key creator's view, is a 404), and calls the workflow's own flows.

django-ninja rather than Django REST framework: it emits OpenAPI 3.1 from the same
pydantic types that check the input, with no serializer layer to keep in step."""

from __future__ import annotations

import json
import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from vouch.api.auth import KeyAuth
from vouch.api.problems import problem
from vouch.api.renderers import JSONRenderer
from vouch.api.resources import candidates, questionnaires, reports, requests, webhooks
from vouch.references.flows import WorkflowError

log = logging.getLogger("vouch.api")


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details: every error of the API.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}


class VouchApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """ninja's document, with the problem details every operation may answer."""
        document = super().get_openapi_schema(*args, **kwargs)
        document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        error = {
            "description": "An error, as problem details",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for item in document.get("paths", {}).values():
            for operation in item.values():
                operation.setdefault("responses", {}).setdefault("default", error)
        return document


api = VouchApi(
    title="Vouch API",
    version="1",
    description=(
        "Reference checks for applicant tracking systems. Authenticate with an API key: "
        "`Authorization: Bearer vk_...`. Errors are RFC 9457 problem details."
    ),
    urls_namespace="api-v1",
    docs_url=None,  # the reference page is drawn on the server (vouch.api.reference): no CDN
    auth=KeyAuth(),
    renderer=JSONRenderer(),
)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", [])],
            "msg": str(error.get("msg", "")),
            "type": error.get("type", ""),
        }
        for error in exc.errors
    ]
    return problem(422, "The request is not valid: see errors.", errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem(401, "Send an API key as Authorization: Bearer <key>.", WWW_Authenticate='Bearer realm="vouch"')


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(exc.status_code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(404, "Not found.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return problem(403, "The key's creator may not do this.")


@api.exception_handler(WorkflowError)
def _workflow(request: HttpRequest, exc: WorkflowError) -> HttpResponse:
    return problem(409, str(exc))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return problem(413, "The body is too large.")


@api.exception_handler(json.JSONDecodeError)
def _bad_json(request: HttpRequest, exc: json.JSONDecodeError) -> HttpResponse:
    return problem(400, "The body is not valid JSON.")


@api.exception_handler(UnicodeDecodeError)
def _bad_text(request: HttpRequest, exc: UnicodeDecodeError) -> HttpResponse:
    return problem(400, "The body is not UTF-8.")


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("api: unhandled error on %s %s", request.method, request.path)
    return problem(500, "Something went wrong on our side; it has been logged.")


api.add_router("/questionnaires", questionnaires.router, tags=["questionnaires"])
api.add_router("/requests", requests.router, tags=["requests"])
api.add_router("/requests", reports.router, tags=["reports"])
api.add_router("/candidates", candidates.router, tags=["candidates"])
api.add_router("/webhooks", webhooks.router, tags=["webhooks"])
