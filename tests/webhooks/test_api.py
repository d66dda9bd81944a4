"""Webhook endpoints through the API (scope webhooks:manage): the services' rules, the
secret in the create and rotate answers only, a key without the scope refused, and
another company's endpoints never shown or touched."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.accounts.helpers import fast_company
from tests.api.conftest import ApiClient, make_key
from tests.references.jobs_helpers import run_due
from tests.webhooks.helpers import add_endpoint, deliveries, event, reload, verified
from tests.webhooks.receiver import Answer
from vouch.accounts.policy import Role
from vouch.api.keys import services as keys
from vouch.audit.models import SecurityEvent
from vouch.core.context import company_context
from vouch.webhooks.models import Endpoint

pytestmark = pytest.mark.django_db
BASE = "/api/v1/webhooks/endpoints"
TYPES = ["request.created", "request.completed"]


@pytest.fixture(autouse=True)
def _fresh_key_state():
    keys.forget_process_state()
    yield
    keys.forget_process_state()


@pytest.fixture
def api(members):
    return ApiClient(make_key(members[Role.ADMIN], ["webhooks:manage"]))


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def test_create_read_list_change_rotate_and_delete(company, members, api, receiver):
    created = api.post_json(
        BASE, {"url": receiver.url(), "event_types": TYPES, "description": "Smith & Jones O'Brien ATS — 採用"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    with company_context(company):
        endpoint = Endpoint.objects.get()
        assert endpoint.secret == secret and secret.startswith("whsec_")
        assert endpoint.created_by_id == members[Role.ADMIN].user_id  # acts for the key's creator
    assert body["id"] == str(endpoint.pk) and body["event_types"] == TYPES and body["enabled"] is True
    assert SecurityEvent.objects.filter(action="webhook_endpoint_created", company_id=company.pk).exists()

    # The secret is in the create answer only.
    read = api.get(f"{BASE}/{endpoint.pk}")
    listed = api.get(BASE)
    assert read.status_code == 200 and listed.status_code == 200
    assert secret not in read.content.decode() and secret not in listed.content.decode()
    assert read.json()["description"] == "Smith & Jones O'Brien ATS — 採用"
    assert [item["id"] for item in listed.json()] == [str(endpoint.pk)]

    changed = api.patch(
        f"{BASE}/{endpoint.pk}", {"event_types": ["reference.completed"]}, content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["event_types"] == ["reference.completed"]
    assert changed.json()["url"] == receiver.url()  # what was not sent stays
    off = api.patch(f"{BASE}/{endpoint.pk}", {"enabled": False}, content_type="application/json")
    assert off.json()["enabled"] is False and reload(company, endpoint).enabled is False
    api.patch(f"{BASE}/{endpoint.pk}", {"enabled": True}, content_type="application/json")

    rotated = api.post_json(f"{BASE}/{endpoint.pk}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    endpoint = reload(company, endpoint)
    assert new == endpoint.secret != secret and endpoint.previous_secret == secret
    assert rotated.json()["previous_secret_until"] is not None and secret not in rotated.content.decode()
    # Both secrets sign during the overlap: a receiver still on the old one verifies.
    event(company, "reference.completed")
    run_due(timezone.now())
    (message,) = receiver.received
    assert verified(message, secret)["type"] == "reference.completed"
    assert verified(message, new)["type"] == "reference.completed"

    deleted = api.delete(f"{BASE}/{endpoint.pk}")
    assert deleted.status_code == 204
    with company_context(company):
        assert not Endpoint.objects.exists()
    problem_of(api.get(f"{BASE}/{endpoint.pk}"), 404)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/x",
        "https://2130706433/",
        "http://example.com/hook",
        "not a url",
    ],
)
def test_a_private_or_plain_url_is_a_422_problem_naming_url(company, api, url):
    """The SSRF guard of vouch.webhooks.egress applies (no receiver fixture: loopback is
    not allowed here), on create and on change."""
    body = problem_of(api.post_json(BASE, {"url": url, "event_types": TYPES}), 422)
    assert any(error["loc"][-1] == "url" for error in body["errors"]), body
    with company_context(company):
        assert not Endpoint.objects.exists()


def test_a_change_to_a_private_url_is_refused_and_nothing_changes(company, api, receiver):
    endpoint, _ = add_endpoint(company, receiver)
    response = api.patch(f"{BASE}/{endpoint.pk}", {"url": "https://192.168.1.1/x"}, content_type="application/json")
    body = problem_of(response, 422)
    assert any(error["loc"][-1] == "url" for error in body["errors"])
    assert reload(company, endpoint).url == receiver.url()


@pytest.mark.parametrize("types", [["user.deleted"], [], ["request.created", "nope"]])
def test_unknown_or_no_event_types_are_a_422_problem(company, api, receiver, types):
    body = problem_of(api.post_json(BASE, {"url": receiver.url(), "event_types": types}), 422)
    assert any("event_types" in error["loc"] for error in body["errors"]), body
    with company_context(company):
        assert not Endpoint.objects.exists()


def test_the_delivery_log_pages_with_a_cursor(company, api, receiver):
    endpoint, _ = add_endpoint(company, receiver, types=["request.created"])
    receiver.script(Answer(status=500))
    event(company)
    run_due(timezone.now())
    for _ in range(4):
        event(company)
    rows = deliveries(company, endpoint)
    seen, cursor = [], None
    while True:
        page = api.get(f"{BASE}/{endpoint.pk}/deliveries", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.content
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [item["id"] for item in seen] == [row.message_id for row in reversed(rows)]
    failed = seen[-1]
    assert failed["attempts"] == 1 and failed["response_code"] == 500 and failed["status"] == "pending"
    assert all(item["event_type"] == "request.created" for item in seen)
    problem_of(api.get(f"{BASE}/{endpoint.pk}/deliveries", {"cursor": "!!not-ours"}), 422)
    problem_of(api.get(f"{BASE}/{endpoint.pk}/deliveries", {"limit": 1000}), 422)


CALLS = [
    ("get", BASE),
    ("post", BASE),
    ("get", BASE + "/{id}"),
    ("patch", BASE + "/{id}"),
    ("post", BASE + "/{id}/rotate-secret"),
    ("get", BASE + "/{id}/deliveries"),
    ("delete", BASE + "/{id}"),
]


def _call(client: ApiClient, method: str, path: str, url: str):
    if method == "post" and path == BASE:
        return client.post_json(path, {"url": url, "event_types": TYPES})
    if method == "patch":
        return client.patch(path, {"event_types": ["request.created"]}, content_type="application/json")
    if method == "post":
        return client.post_json(path)
    return getattr(client, method)(path)


@pytest.mark.parametrize("method, path", CALLS)
def test_every_operation_refuses_a_key_without_webhooks_manage(company, members, receiver, method, path):
    endpoint, secret = add_endpoint(company, receiver)
    path = path.format(id=endpoint.pk)
    others = ["questionnaires:read", "requests:read", "requests:write", "reports:read", "candidates:admin"]
    body = problem_of(_call(ApiClient(make_key(members[Role.OWNER], others)), method, path, receiver.url()), 403)
    assert "webhooks:manage" in body["detail"]
    endpoint = reload(company, endpoint)
    assert endpoint.secret == secret and endpoint.event_types != ["request.created"]
    with company_context(company):
        assert Endpoint.objects.count() == 1
    allowed = _call(ApiClient(make_key(members[Role.OWNER], ["webhooks:manage"])), method, path, receiver.url())
    assert allowed.status_code in (200, 201, 204), allowed.content


@pytest.mark.parametrize("method, path", [call for call in CALLS if "{id}" in call[1]])
def test_every_operation_refuses_another_companys_endpoint(company, members, receiver, method, path):
    other = fast_company("Other Hiring")
    theirs, their_secret = add_endpoint(other, receiver)
    event(other)
    response = _call(ApiClient(make_key(members[Role.OWNER])), method, path.format(id=theirs.pk), receiver.url())
    problem_of(response, 404)
    theirs = reload(other, theirs)
    assert theirs.secret == their_secret and theirs.event_types != ["request.created"]
    assert str(theirs.pk) not in ApiClient(make_key(members[Role.OWNER])).get(BASE).content.decode()
    assert SecurityEvent.objects.filter(action="authz_fail", details__object="webhooks.Endpoint").exists()
