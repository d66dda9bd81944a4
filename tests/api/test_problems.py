"""Every error of the API is RFC 9457 problem details, bad input never a 500; the OpenAPI
document and the reference page; idempotent POSTs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from tests.api.conftest import ApiClient, make_key
from tests.api.test_resources import new_request
from tests.conftest import make_company
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.api.models import IdempotentCall
from vouch.core.context import company_context
from vouch.references.request_models import ReferenceRequest

pytestmark = pytest.mark.django_db

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.fixture
def api(company, members):
    return ApiClient(make_key(members[Role.ADMIN]))


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == status
    assert body["type"].startswith("https://") and "Traceback" not in response.content.decode()
    return body


def test_every_error_is_a_problem(company, members, api):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    assert_problem(api.get("/api/v1/nothing-here"), 404)
    assert_problem(ApiClient(None).get("/api/v1/nothing-here"), 404)
    assert_problem(api.get("/api/v1/requests/not-a-uuid"), 422)
    assert_problem(api.get(f"/api/v1/requests/{reference_request.pk}/cancel"), 405)
    assert_problem(api.delete("/api/v1/requests"), 405)
    assert_problem(api.post("/api/v1/requests", {"role": "x"}), 415)  # a form, not JSON
    assert_problem(api.post("/api/v1/requests", "{not json", content_type="application/json"), 400)
    assert_problem(api.post("/api/v1/requests", b"\xff\xfe{}", content_type="application/json"), 400)
    assert_problem(api.post("/api/v1/requests", "[1, 2]", content_type="application/json"), 422)
    assert_problem(api.post_json("/api/v1/requests", {}), 422)
    big = json.dumps({"role": "x" * 3_000_000})
    assert_problem(api.post("/api/v1/requests", big, content_type="application/json"), 413)
    assert_problem(ApiClient(None).get("/api/v1/requests"), 401)
    assert_problem(ApiClient(make_key(members[Role.ADMIN], ["reports:read"])).get("/api/v1/requests"), 403)


def test_an_unexpected_failure_is_a_500_problem_without_details(company, members, api, monkeypatch):
    from vouch.references.questionnaires import services

    def broken():
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(services, "choices", broken)
    body = assert_problem(api.get("/api/v1/questionnaires"), 500)
    assert "internal detail" not in json.dumps(body)


def test_the_openapi_document_and_the_reference_page():
    document = ApiClient(None).get("/api/v1/openapi.json")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/requests", "/api/v1/requests/{request_id}", "/api/v1/questionnaires"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["KeyAuth"]["scheme"] == "bearer"
    page = ApiClient(None).get("/api/v1/reference/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "POST /api/v1/requests" in html and "RequestIn" in html
    assert "cdn" not in html.lower() and "http://" not in html.replace("http://www.w3.org", "")


def test_a_retried_create_returns_the_first_result(company, members, api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-4411-attempt"}
    with TestCase.captureOnCommitCallbacks(execute=True):
        first = api.post_json("/api/v1/requests", new_request(), **headers)
    again = api.post_json("/api/v1/requests", new_request(), **headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    with company_context(company):
        assert ReferenceRequest.objects.count() == 1
        stored = IdempotentCall.objects.get()
        assert "order-4411-attempt" not in stored.key_hash
    different = api.post_json("/api/v1/requests", new_request(role="Another role"), **headers)
    assert_problem(different, 422)
    # Without the header, each POST is a new call.
    api.post_json("/api/v1/requests", new_request())
    with company_context(company):
        assert ReferenceRequest.objects.count() == 2


def test_idempotency_keys_are_per_company_and_expire(company, members, api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "same-key"}
    assert api.post_json("/api/v1/requests", new_request(), **headers).status_code == 201
    other = make_company()
    other_api = ApiClient(make_key(other.memberships.get()))
    created = other_api.post_json("/api/v1/requests", new_request(), **headers)
    assert created.status_code == 201 and "Idempotent-Replayed" not in created
    with company_context(company):
        IdempotentCall.objects.update(created_at=timezone.now() - timedelta(hours=25))
    fresh = api.post_json("/api/v1/requests", new_request(), **headers)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh
    with company_context(company):
        assert ReferenceRequest.objects.count() == 2


def test_a_refused_call_is_replayed_too_and_an_overlong_key_refused(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "bad-one"}
    first = api.post_json("/api/v1/requests", new_request(deadline="2001-01-01"), **headers)
    again = api.post_json("/api/v1/requests", new_request(deadline="2001-01-01"), **headers)
    assert first.status_code == again.status_code == 422 and again["Idempotent-Replayed"] == "true"
    assert_problem(api.post_json("/api/v1/requests", new_request(), HTTP_IDEMPOTENCY_KEY="k" * 300), 400)


def test_csrf_does_not_apply_to_key_calls(company, members):
    """With Django's CSRF checks on (as in production), a key's POST needs no token."""
    api = ApiClient(make_key(members[Role.ADMIN]), enforce_csrf_checks=True)
    assert api.post_json("/api/v1/requests", new_request()).status_code == 201
    # Control: the same client is refused a page's POST without the token.
    browser = ApiClient(None, enforce_csrf_checks=True)
    browser.force_login(members[Role.OWNER].user)
    assert browser.post("/company/api-keys/new/", {"name": "x", "scopes": ["requests:read"]}).status_code == 403
