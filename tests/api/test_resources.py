"""The API's resources: questionnaires and reference requests, through the workflow's own
flows; each refuses a key without its scope and another company's ids."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from tests.api.conftest import ApiClient, make_key
from tests.conftest import make_company
from tests.references.jobs_helpers import queued, run_due
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.audit.models import SecurityEvent
from vouch.core.context import company_context
from vouch.references.questionnaires import services as questionnaires
from vouch.references.request_models import ReferenceRequest

pytestmark = pytest.mark.django_db
QUESTIONS = questionnaires.builtin("general-professional").questions[:2]  # type: ignore[union-attr]


def deadline(days: int = 14) -> str:
    return (timezone.now() + timedelta(days=days)).date().isoformat()


def new_request(**overrides) -> dict:
    return {
        "candidate": {"name": "Siobhán O'Brien", "email": "siobhan@example.org", "phone": "07700 900456"},
        "role": "Head of Finance",
        "questionnaire": "builtin:general-professional",
        "deadline": deadline(),
        "external_id": "gh-app-4411",
        "external_url": "https://ats.example/applications/4411",
        **overrides,
    }


@pytest.fixture
def api(company, members):
    return ApiClient(make_key(members[Role.ADMIN]))


def test_questionnaires_list_and_read(company, members, api):
    with company_context(company):
        own = questionnaires.create_questionnaire("Engineering & Ops", QUESTIONS)
    listed = api.get("/api/v1/questionnaires").json()
    ids = [item["id"] for item in listed]
    assert "builtin:general-professional" in ids and str(own.pk) in ids
    detail = api.get(f"/api/v1/questionnaires/{own.pk}").json()
    assert detail["name"] == "Engineering & Ops" and detail["version"] == 1 and detail["questions"] == QUESTIONS
    builtin = api.get("/api/v1/questionnaires/builtin:general-professional").json()
    assert builtin["builtin"] is True and builtin["questions"]
    assert api.get("/api/v1/questionnaires/builtin:nope").status_code == 404
    assert api.get("/api/v1/questionnaires/not-a-uuid").status_code == 404
    # Another company's template: the same 404 as an unknown id, and recorded.
    other = make_company()
    with company_context(other):
        theirs = questionnaires.create_questionnaire("Theirs", QUESTIONS)
    assert api.get(f"/api/v1/questionnaires/{theirs.pk}").status_code == 404
    assert SecurityEvent.objects.filter(action="authz_fail", details__object="references.Questionnaire").exists()


def test_create_read_and_find_by_external_id(company, members, api):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post_json("/api/v1/requests", new_request())
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "awaiting_candidate" and created["external_id"] == "gh-app-4411"
    assert created["candidate"]["name"] == "Siobhán O'Brien" and created["references"] == []
    # The candidate is emailed their link, as by the dashboard's form, by the worker: one
    # task queued, which sends it and plans the request's expiry and reminders.
    assert not any("siobhan@example.org" in message.to for message in mail.outbox)
    assert [task.task_path.rsplit(".", 1)[1] for task in queued("request_created")] == ["request_created"]
    ran = run_due(timezone.now())
    assert [task.status for task in ran] == ["SUCCESSFUL"]
    assert [m.to for m in mail.outbox if "siobhan@example.org" in m.to] == [["siobhan@example.org"]]
    assert len(queued("expire_at_deadline")) == 1 and queued("remind_candidate")
    with company_context(company):
        row = ReferenceRequest.objects.get(pk=created["id"])
        assert row.created_by_id == members[Role.ADMIN].user_id  # acts for the key's creator
        assert row.external_url == "https://ats.example/applications/4411"
    read = api.get(f"/api/v1/requests/{created['id']}").json()
    assert read == created
    found = api.get("/api/v1/requests", {"external_id": "gh-app-4411"}).json()
    assert [item["id"] for item in found["items"]] == [created["id"]] and found["next_cursor"] is None
    assert api.get("/api/v1/requests", {"external_id": "other"}).json()["items"] == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"candidate": {"name": "A", "email": "not-an-email"}}, "email"),
        ({"deadline": "2001-01-01"}, "deadline"),
        ({"questionnaire": "builtin:nope"}, "questionnaire"),
        ({"referees_required": 99}, "referees_required"),
        ({"external_url": "javascript:alert(1)"}, "external_url"),
        ({"role": "x" * 5000}, "role"),
        ({"role": "line one\nline two"}, "role"),
    ],
)
def test_bad_input_is_a_422_problem_naming_the_field(api, change, field):
    response = api.post_json("/api/v1/requests", new_request(**change))
    assert response.status_code == 422, response.content
    body = response.json()
    assert response["Content-Type"] == "application/problem+json" and body["status"] == 422
    assert any(field in error["loc"] for error in body["errors"]), body


def test_list_pages_with_a_cursor_and_the_dashboard_filters(company, members, api):
    made = [make_request(company, members[Role.RECRUITER].user, email=f"c{n}@example.org")[0] for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/requests", params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(r.pk) for r in sorted(made, key=lambda r: (r.created_at, r.pk), reverse=True)]
    assert api.get("/api/v1/requests", {"q": "c3@example.org"}).json()["items"][0]["id"] == str(made[3].pk)
    assert len(api.get("/api/v1/requests", {"status": "cancelled"}).json()["items"]) == 0
    assert api.get("/api/v1/requests", {"status": "bogus"}).status_code == 422
    assert api.get("/api/v1/requests", {"cursor": "!!not-ours"}).status_code == 422
    assert api.get("/api/v1/requests", {"limit": 1000}).status_code == 422


def test_cancel_and_resend(company, members, api):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        resent = api.post_json(f"/api/v1/requests/{reference_request.pk}/resend")
    assert resent.status_code == 200
    assert [m.to for m in mail.outbox if "casey@example.org" in m.to] == [["casey@example.org"]]
    cancelled = api.post_json(f"/api/v1/requests/{reference_request.pk}/cancel", {"reason": "Role filled"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post_json(f"/api/v1/requests/{reference_request.pk}/cancel")
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"
    assert api.post_json(f"/api/v1/requests/{reference_request.pk}/resend").status_code == 409


ENDPOINTS = [
    ("get", "/api/v1/questionnaires", "questionnaires:read"),
    ("get", "/api/v1/questionnaires/builtin:general-professional", "questionnaires:read"),
    ("get", "/api/v1/requests", "requests:read"),
    ("get", "/api/v1/requests/{id}", "requests:read"),
    ("post", "/api/v1/requests", "requests:write"),
    ("post", "/api/v1/requests/{id}/cancel", "requests:write"),
    ("post", "/api/v1/requests/{id}/resend", "requests:write"),
    ("post", "/api/v1/requests/batch", "requests:write"),
    ("get", "/api/v1/requests/{id}/report", "reports:read"),
    ("get", "/api/v1/requests/{id}/report.pdf", "reports:read"),
    ("post", "/api/v1/candidates/{candidate}/export", "candidates:admin"),
]


def _call(client: ApiClient, method: str, path: str):
    if method == "post":
        body = new_request() if path.endswith("/requests") else {}
        if path.endswith("/batch"):
            body = {"requests": [new_request()]}
        return client.post_json(path, body)
    return client.get(path)


@pytest.mark.parametrize("method, path, scope", ENDPOINTS)
def test_every_endpoint_refuses_a_key_without_its_scope(company, members, method, path, scope):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    path = path.format(id=reference_request.pk, candidate=reference_request.candidate_id)
    others = [s for s in ("questionnaires:read", "requests:read", "requests:write", "reports:read") if s != scope]
    response = _call(ApiClient(make_key(members[Role.ADMIN], others)), method, path)
    assert response.status_code == 403 and scope in response.json()["detail"]
    assert _call(ApiClient(make_key(members[Role.ADMIN], [scope])), method, path).status_code in (200, 201)


@pytest.mark.parametrize("method, path, scope", [e for e in ENDPOINTS if "{" in e[1]])
def test_every_endpoint_refuses_another_companys_ids(company, members, method, path, scope):
    other = make_company()
    theirs, _ = make_request(other, other.memberships.get().user)
    response = _call(
        ApiClient(make_key(members[Role.OWNER])), method, path.format(id=theirs.pk, candidate=theirs.candidate_id)
    )
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    with company_context(other):
        assert ReferenceRequest.objects.get(pk=theirs.pk).status == "awaiting_candidate"


def test_a_recruiter_limited_to_their_own_requests_sees_the_same_through_a_key(company, members):
    """A key of an admin sees every request; the view rules are the member pages' own."""
    from vouch.references.request_models import WorkflowSettings

    with company_context(company):
        settings = WorkflowSettings.current()
        settings.recruiters_see_all = False
        settings.save()
    reference_request, _ = make_request(company, members[Role.OWNER].user)
    assert ApiClient(make_key(members[Role.ADMIN])).get(f"/api/v1/requests/{reference_request.pk}").status_code == 200


def test_create_many_creates_the_good_and_reports_the_bad(company, members, api):
    batch = {
        "requests": [
            new_request(external_id="a-1"),
            new_request(candidate={"name": "Bad", "email": "nope"}, external_id="a-2"),
            new_request(candidate={"name": "Zoë Ångström", "email": "zoe@example.org"}, external_id="a-3"),
        ]
    }
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post_json("/api/v1/requests/batch", batch)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 2 and [r["status"] for r in body["results"]] == [201, 422, 201]
    assert any("email" in error["loc"] for error in body["results"][1]["errors"])
    with company_context(company):
        assert sorted(ReferenceRequest.objects.values_list("external_id", flat=True)) == ["a-1", "a-3"]
    assert api.post_json("/api/v1/requests/batch", {"requests": []}).status_code == 422
    too_many = {"requests": [new_request()] * 51}
    assert api.post_json("/api/v1/requests/batch", too_many).status_code == 422


def test_the_report_as_json(company, members, api):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, name="Zoë O'Brien")
    report = api.get(f"/api/v1/requests/{reference_request.pk}/report")
    assert report.status_code == 200
    body = report.json()
    assert body["request"]["id"] == str(reference_request.pk) and body["candidate"]["name"] == "Zoë O'Brien"
    assert body["referees"] == [] and body["timeline"]


def test_export_and_erase_a_candidate(company, members, api):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, name="Zoë O'Brien")
    candidate_id = reference_request.candidate_id
    exported = api.post_json(f"/api/v1/candidates/{candidate_id}/export")
    assert exported.status_code == 200 and "Zoë O'Brien" in json.dumps(exported.json(), ensure_ascii=False)
    assert SecurityEvent.objects.filter(action="data_export", target=f"candidate:{candidate_id}").exists()
    wrong = api.post_json(f"/api/v1/candidates/{candidate_id}/erase", {"confirm_name": "Someone Else"})
    assert wrong.status_code == 422
    assert api.get(f"/api/v1/requests/{reference_request.pk}").status_code == 200  # nothing erased
    erased = api.post_json(f"/api/v1/candidates/{candidate_id}/erase", {"confirm_name": "Zoë O'Brien"})
    assert erased.status_code == 200 and erased.json()["requests"] == 1
    assert api.get(f"/api/v1/requests/{reference_request.pk}").status_code == 404
    assert SecurityEvent.objects.filter(action="data_erased", target=f"candidate:{candidate_id}").exists()


def test_a_candidates_admin_key_of_a_demoted_admin_stops(company, members):
    admin = members[Role.ADMIN]
    api = ApiClient(make_key(admin, ["candidates:admin"]))
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    admin.role = Role.RECRUITER
    admin.save()
    refused = api.post_json(f"/api/v1/candidates/{reference_request.candidate_id}/export")
    assert refused.status_code == 401
