"""Logs: one JSON line per request, tied to the response by its request id, with the
route pattern only; no tokens, email addresses or passwords anywhere in the logs."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.test import override_settings

from tests.accounts.helpers import mark_reauthenticated
from tests.conftest import PASSWORD, HTTPSClient, make_user

pytestmark = pytest.mark.django_db


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def request_lines(stream: io.StringIO) -> list[dict]:
    return [entry for entry in lines(stream) if entry.get("logger") == "vouch.request"]


def test_one_json_line_per_request_with_request_id_and_route(client, logs):
    response = client.get("/accounts/login/")
    entries = request_lines(logs)
    assert len(entries) == 1
    entry = entries[0]
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert entry["request_id"] == response["X-Request-ID"]
    assert entry["route"] == "accounts/login/"
    assert entry["status"] == 200
    assert entry["method"] == "GET"
    assert isinstance(entry["ms"], (int, float))
    assert entry["event"] == "request"
    assert "timestamp" in entry


def test_request_ids_differ(client, logs):
    first = client.get("/livez")["X-Request-ID"]
    second = client.get("/livez")["X-Request-ID"]
    assert first != second
    assert [e["request_id"] for e in request_lines(logs)] == [first, second]


def test_token_in_the_path_is_never_logged(client, logs, company, owner):
    from vouch.accounts.models import Invitation

    token = "tok3n-" + "Q" * 40
    response = client.get(f"/invitations/{token}/?email=leak%40example.com")
    entries = request_lines(logs)
    assert len(entries) == 1
    assert entries[0]["route"] == "invitations/<str:token>/"
    assert entries[0]["request_id"] == response["X-Request-ID"]
    text = logs.getvalue()
    assert token not in text
    assert "leak@example.com" not in text and "leak%40example.com" not in text
    assert "/invitations/" not in text  # the raw path is not there in any form
    assert not Invitation.objects.exists()


def test_real_invitation_link_token_is_not_logged(client, logs, company, owner):
    """Follow a real emailed invitation link: neither the token nor the invitee's
    address reaches the logs."""
    from django.core import mail

    inviter = HTTPSClient()
    inviter.force_login(owner.user)
    mark_reauthenticated(inviter)  # inviting asks for the password again
    assert inviter.post("/members/invite/", {"email": "invitee.secret@example.com", "role": "20"}).status_code == 302
    link = re.search(r"https?://[^\s/]+(/invitations/[^\s/]+/)", mail.outbox[0].body).group(1)
    token = link.split("/")[2]
    logs.truncate(0)
    logs.seek(0)
    response = client.get(link)
    assert response.status_code == 302
    text = logs.getvalue()
    assert token not in text
    assert "invitee.secret@example.com" not in text
    assert request_lines(logs)[0]["route"] == "invitations/<str:token>/"


def test_unmatched_path_logs_no_route_and_no_path(client, logs):
    client.get("/wp-admin/secret-probe-path.php")
    entry = request_lines(logs)[0]
    assert entry["route"] is None
    assert entry["status"] == 404
    assert "secret-probe-path" not in logs.getvalue()


def test_login_never_logs_the_email_or_password(client, logs):
    make_user("private.person@example.com")
    wrong = "wrong but long password 1234"
    client.post("/accounts/login/", {"login": "private.person@example.com", "password": wrong})
    client.post("/accounts/login/", {"login": "nobody.at.all@example.com", "password": wrong})
    response = client.post("/accounts/login/", {"login": "private.person@example.com", "password": PASSWORD})
    assert response.status_code == 302
    client.post("/accounts/logout/")
    client.post("/accounts/password/reset/", {"email": "private.person@example.com"})
    text = logs.getvalue()
    assert len(request_lines(logs)) == 5
    for secret in (PASSWORD, wrong, "private.person@example.com", "nobody.at.all@example.com", "private.person"):
        assert secret not in text, secret


def test_signup_never_logs_personal_data(client, logs):
    password = "saffron gondola quartz 4471"
    client.post(
        "/accounts/signup/",
        {
            "full_name": "Quentin Privatename",
            "email": "quentin.private@example.com",
            "company_name": "Secretive Widgets",
            "region": "eu",
            "password1": password,
            "password2": password,
        },
    )
    text = logs.getvalue()
    assert request_lines(logs)
    for secret in (password, "quentin.private", "Privatename", "Secretive Widgets"):
        assert secret not in text, secret


@override_settings(ROOT_URLCONF="tests.security.boom_urls")
def test_server_error_is_logged_with_request_id_but_without_the_token(client, logs):
    token = "s3cret-" + "Z" * 40
    client.raise_request_exception = False
    response = client.get(f"/boom/{token}/?q=another-secret")
    assert response.status_code == 500
    assert "kaboom" not in response.content.decode()
    rid = response["X-Request-ID"]
    assert [(e["status"], e["route"]) for e in request_lines(logs)] == [(500, "boom/<str:token>/")]
    errors = [e for e in lines(logs) if e.get("level") == "error"]
    assert errors and all(e.get("request_id") == rid for e in errors)
    text = logs.getvalue()
    assert "kaboom" in text  # the operator gets the traceback ...
    assert token not in text  # ... but not the token from the path
    assert "another-secret" not in text


def test_csrf_refusal_log_names_the_route_not_the_path(csrf_client, logs, owner):
    csrf_client.force_login(owner.user)
    response = csrf_client.post("/members/invite/", {"email": "someone.secret@example.com", "role": "20"})
    assert response.status_code == 403
    text = logs.getvalue()
    assert "django.security.csrf" in text
    assert "someone.secret" not in text


def test_an_error_page_whose_context_fails_is_still_a_page_and_logged(client, logs, owner, monkeypatch):
    """The error page draws the signed-in user and company: when looking up the user is
    what failed (the session store out), the page is drawn without them, and the request
    is still in the access log with the error logged under its id."""
    from django.contrib import auth

    client.force_login(owner.user)
    client.raise_request_exception = False

    def broken(request):
        raise RuntimeError("session store down")

    monkeypatch.setattr(auth, "get_user", broken)
    response = client.get("/dashboard/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    rid = response["X-Request-ID"]
    # Failed in a middleware, before the address was resolved: no route, but a line.
    assert [(e["status"], e["request_id"]) for e in request_lines(logs)] == [(500, rid)]
    assert any(e.get("request_id") == rid and e.get("level") == "error" for e in lines(logs))
