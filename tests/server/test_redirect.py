"""The plain-HTTP port only redirects to HTTPS (P12), and cannot be made to redirect off-site."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.server.helpers import http_request

pytestmark = pytest.mark.server


def _https(server, rest: str) -> str:
    return f"https://localhost:{server.https_port}{rest}"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_get_301_to_the_same_path_and_query(live_vouch, method):
    response = http_request(live_vouch, method, "/same/path?q=1&next=%2Fdashboard%2F")
    assert response.status == 301
    assert response.header("Location") == _https(live_vouch, "/same/path?q=1&next=%2Fdashboard%2F")
    assert not response.all("Set-Cookie")  # nothing secret ever travels over plain HTTP


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_get_308_which_keeps_the_method(live_vouch, method):
    response = http_request(live_vouch, method, "/accounts/login/?x=1")
    assert response.status == 308
    assert response.header("Location") == _https(live_vouch, "/accounts/login/?x=1")


def test_an_allowed_host_is_kept(live_vouch):
    response = http_request(live_vouch, "GET", "/a", host=f"127.0.0.1:{live_vouch.http_port}")
    assert response.header("Location") == f"https://127.0.0.1:{live_vouch.https_port}/a"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:80",
        "localhost.evil.example",
        "evil.example#localhost",
        "localhost@evil.example",
        "",
    ],
)
def test_a_host_that_is_not_allowed_is_not_echoed(live_vouch, host):
    response = http_request(live_vouch, "GET", "/a?b=c", host=host)
    assert response.status == 301
    assert response.header("Location") == _https(live_vouch, "/a?b=c")  # the public URL


@pytest.mark.parametrize(
    "host", ["[::1].evil.example", "[::1]@evil.example", "[evil.example]", "[::1]:80.evil.example"]
)
def test_a_malformed_bracketed_host_stays_on_an_allowed_host(live_vouch, host):
    location = http_request(live_vouch, "GET", "/a", host=host).header("Location")
    assert urlsplit(location).hostname in {"localhost", "::1"}
    assert "evil" not in location


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "///evil.example/x", "/\\evil.example/x", "http://evil.example/x", "//evil.example"],
)
def test_hostile_paths_do_not_redirect_off_site(live_vouch, target):
    response = http_request(live_vouch, "GET", target)
    location = response.header("Location")
    assert response.status == 301
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("https", f"localhost:{live_vouch.https_port}")
    assert not parts.path.startswith("//")
