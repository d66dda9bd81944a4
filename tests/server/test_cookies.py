"""Cookies of the real server (P12): __Host- names, Secure, HttpOnly, SameSite, no Domain."""

from __future__ import annotations

import pytest

from tests.server import helpers
from tests.server.helpers import Cookie, login, request

pytestmark = pytest.mark.server


def assert_host_only_secure(cookie: Cookie) -> None:
    assert cookie.name.startswith("__Host-")
    assert cookie.value
    assert cookie.has("Secure")
    assert cookie.has("HttpOnly")
    assert (cookie.get("SameSite") or "").lower() in {"lax", "strict"}
    assert cookie.get("Path") == "/"
    assert not cookie.has("Domain")


def test_csrf_cookie_is_host_only_and_secure(live_vouch):
    response = request(live_vouch, "GET", "/accounts/login/")
    cookies = response.cookies()
    assert "csrftoken" not in cookies
    assert_host_only_secure(cookies["__Host-csrftoken"])


@pytest.fixture(scope="module")
def signed_in(live_vouch, live_member):
    response = login(live_vouch, live_member["email"])
    assert response.status == 302, response.text[:500]
    return response


def test_login_redirects_to_the_dashboard(signed_in):
    assert signed_in.header("Location") == "/dashboard/"


def test_session_cookie_is_host_only_and_secure(signed_in):
    cookies = signed_in.cookies()
    assert "sessionid" not in cookies
    session = cookies["__Host-vouch_session"]
    assert_host_only_secure(session)
    assert len(session.value) >= 32


def test_the_session_cookie_signs_the_member_in(live_vouch, live_member, signed_in):
    session = signed_in.cookies()["__Host-vouch_session"].value
    page = request(live_vouch, "GET", "/dashboard/", cookies={"__Host-vouch_session": session})
    assert page.status == 200
    assert live_member["company"] in page.text
    assert live_member["email"] in page.text
    assert page.header("Strict-Transport-Security")
    assert "unsafe-inline" not in page.header("Content-Security-Policy")


def test_a_forged_session_cookie_does_not_sign_in(live_vouch, signed_in):
    forged = signed_in.cookies()["__Host-vouch_session"].value[:-4] + "abcd"
    page = request(live_vouch, "GET", "/dashboard/", cookies={"__Host-vouch_session": forged})
    assert page.status == 302
    assert page.header("Location").startswith("/accounts/login/")


def test_a_wrong_password_sets_no_session(live_vouch, live_member):
    response = login(live_vouch, live_member["email"], password="not the password at all")
    assert response.status == 200  # the form again, with an error
    assert "__Host-vouch_session" not in response.cookies()


def test_the_session_changes_at_login(live_vouch, live_member):
    """A session id known before login (fixation) is not the one used after it."""
    csrf, token, page = helpers.csrf_form(live_vouch, "/accounts/login/")
    before = "fixated0session0value0abcdefghij"
    response = helpers.post_form(
        live_vouch,
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "login": live_member["email"], "password": helpers.PASSWORD},
        cookies={"__Host-csrftoken": csrf, "__Host-vouch_session": before},
    )
    assert response.status == 302
    assert response.cookies()["__Host-vouch_session"].value != before
