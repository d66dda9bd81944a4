"""Security headers on real HTTPS responses (P12, P14)."""

from __future__ import annotations

import re

import pytest

from tests.server.helpers import request

pytestmark = pytest.mark.server

PAGES = ["/", "/accounts/login/", "/accounts/signup/", "/healthz", "/no-such-page/"]


def _csp(value: str) -> dict[str, list[str]]:
    directives = {}
    for part in value.split(";"):
        name, *sources = part.split()
        directives[name.lower()] = sources
    return directives


@pytest.mark.parametrize("path", PAGES)
def test_transport_and_framing_headers(live_vouch, path):
    response = request(live_vouch, "GET", path)
    assert response.status in (200, 404)

    hsts = response.header("Strict-Transport-Security")
    assert hsts, "no HSTS"
    max_age = re.search(r"max-age=(\d+)", hsts)
    assert max_age and int(max_age.group(1)) >= 63072000
    assert "includesubdomains" in hsts.lower()

    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("X-Frame-Options") == "DENY"
    assert response.header("Referrer-Policy") in {"same-origin", "no-referrer", "strict-origin-when-cross-origin"}
    assert response.header("Cross-Origin-Opener-Policy") == "same-origin"
    permissions = response.header("Permissions-Policy") or ""
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions
    assert re.fullmatch(r"[0-9a-f]{32}", response.header("X-Request-ID") or "")
    cache_control = response.header("Cache-Control") or ""
    assert "no-store" in cache_control and "private" in cache_control


def test_static_files_stay_cacheable(live_vouch):
    response = request(live_vouch, "GET", "/static/vouch/favicon.svg")
    assert response.status == 200
    assert "no-store" not in (response.header("Cache-Control") or "")


@pytest.mark.parametrize("path", PAGES)
def test_content_security_policy_is_strict(live_vouch, path):
    response = request(live_vouch, "GET", path)
    assert len(response.all("Content-Security-Policy")) == 1
    value = response.header("Content-Security-Policy")
    assert "unsafe-inline" not in value
    assert "unsafe-eval" not in value
    assert "*" not in value
    csp = _csp(value)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]


def test_request_ids_differ_per_request(live_vouch):
    ids = {request(live_vouch, "GET", "/livez").header("X-Request-ID") for _ in range(3)}
    assert len(ids) == 3


def test_no_server_internals_are_disclosed(live_vouch):
    response = request(live_vouch, "GET", "/no-such-page/")
    assert response.status == 404
    assert "Traceback" not in response.text
    assert "DEBUG" not in response.text
    assert not response.all("X-Powered-By")
