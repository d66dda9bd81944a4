"""P12: HTTPS only, HTTP redirects, HSTS, secure cookies and a strict CSP."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

PAGES = ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/no-such-page/"]


def test_session_cookie_is_host_prefixed_secure_httponly_samesite(client):
    make_user("cookie@example.com")
    response = client.post("/accounts/login/", {"login": "cookie@example.com", "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies["__Host-vouch_session"]
    assert cookie.value
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() in {"lax", "strict"}
    # __Host- cookies must have Path=/ and no Domain, or browsers drop them.
    assert cookie["path"] == "/"
    assert not cookie["domain"]
    header = cookie.output()
    assert "Secure" in header and "HttpOnly" in header


def test_csrf_cookie_is_host_prefixed_and_secure(client):
    response = client.get("/accounts/login/")
    cookie = response.cookies["__Host-csrftoken"]
    assert cookie.value
    assert cookie["secure"] is True
    assert cookie["path"] == "/"
    assert not cookie["domain"]
    assert cookie["samesite"].lower() in {"lax", "strict"}


def test_no_cookie_is_ever_set_without_secure(client, owner):
    seen = {}
    for path in PAGES:
        seen.update(client.get(path).cookies)
    make_user("c2@example.com")
    seen.update(client.post("/accounts/login/", {"login": "c2@example.com", "password": PASSWORD}).cookies)
    client.force_login(owner.user)
    seen.update(client.get("/dashboard/").cookies)
    assert seen
    for name, cookie in seen.items():
        assert cookie["secure"] is True, name


@pytest.mark.parametrize("path", PAGES)
def test_hsts(client, path):
    value = client.get(path)["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", value).group(1))
    assert max_age >= 63072000
    assert "includeSubDomains" in value


@pytest.mark.parametrize("path", PAGES)
def test_csp_is_strict(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert "*" not in policy.split()
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        assert set(directives[directive]) <= {"'self'"} or all(
            s == "'self'" or s.startswith("'nonce-") for s in directives[directive]
        )


def test_pages_carry_no_inline_script_or_style(client, owner):
    """With CSP forbidding inline code, inline code would simply break; keep it out."""
    client.force_login(owner.user)
    for path in [*PAGES, "/dashboard/", "/members/"]:
        html = client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert " onclick=" not in html and " onload=" not in html and " onsubmit=" not in html, path
        assert "<style" not in html, path


@pytest.mark.parametrize("path", PAGES)
def test_other_security_headers(client, path):
    response = client.get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] in {"same-origin", "no-referrer", "strict-origin"}
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/"),
        ("get", "/accounts/login/?next=/dashboard/"),
        ("head", "/accounts/signup/"),
        ("post", "/accounts/login/"),
    ],
)
def test_plain_http_is_redirected_to_https(method, path):
    plain = Client()  # no wsgi.url_scheme=https: a plain-HTTP request
    response = getattr(plain, method)(path)
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{path}"
    assert "__Host-vouch_session" not in response.cookies


def test_plain_http_login_post_never_reaches_the_login_view(monkeypatch):
    from vouch.accounts.hashers import VouchArgon2PasswordHasher

    calls = []
    monkeypatch.setattr(VouchArgon2PasswordHasher, "verify", lambda *a: calls.append(a) or False)
    monkeypatch.setattr(VouchArgon2PasswordHasher, "encode", lambda *a: calls.append(a) or "x")
    response = Client().post("/accounts/login/", {"login": "a@example.com", "password": PASSWORD})
    assert response.status_code == 301
    assert calls == []


def test_http_listener_never_redirects_to_a_foreign_host():
    from vouch.web import redirect

    assert redirect.target_url("evil.example", "/accounts/login/", "").startswith("https://localhost")
    assert redirect.target_url("evil.example:80", "/x", "a=1").endswith("/x?a=1")
    assert redirect.target_url("localhost:8080", "/x", "").startswith("https://localhost:")
    assert not redirect.target_url("[evil]", "/x", "").startswith("https://[evil]")
