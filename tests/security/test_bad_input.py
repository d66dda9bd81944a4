"""Bad input is a clear 4xx (or a form with errors), never a 500 (P3, P14)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.exceptions import Resolver404

from tests.conftest import HTTPSClient

pytestmark = pytest.mark.django_db


class CountingStream(io.RawIOBase):
    """A request body stream that records how much of it the app reads."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        self.remaining -= n
        self.read_bytes += n
        return b"a" * n

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _quiet(client: HTTPSClient) -> HTTPSClient:
    client.raise_request_exception = False
    return client


# -- body size ---------------------------------------------------------------------


def test_declared_body_over_the_cap_is_refused_before_reading(settings):
    client = _quiet(HTTPSClient())
    stream = CountingStream(settings.VOUCH_MAX_BODY_BYTES + 1)
    response = client.generic(
        "POST",
        "/accounts/login/",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(settings.VOUCH_MAX_BODY_BYTES + 1),
        **{"wsgi.input": stream},
    )
    assert response.status_code == 413
    assert "Too much data" in response.content.decode()
    assert stream.read_bytes == 0


def test_body_cap_follows_the_setting():
    with override_settings(VOUCH_MAX_BODY_BYTES=1000):
        client = _quiet(HTTPSClient())  # the middleware reads the cap when the client builds it
        assert client.post("/accounts/login/", {"login": "a@example.com", "password": "x" * 2000}).status_code == 413
        small = client.post("/accounts/password/reset/", {"email": "a@example.com"})
        assert small.status_code == 302


def test_body_at_the_cap_is_accepted(settings):
    client = _quiet(HTTPSClient())
    body = "email=a%40example.com&pad=" + "x" * 100
    response = client.generic(
        "POST", "/accounts/password/reset/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 302


def test_oversize_form_data_under_the_body_cap_is_413_not_400():
    """Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE) is what a streamed body runs
    into; it must read as "too large", not as a malformed request."""
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        client = _quiet(HTTPSClient())
        response = client.post("/accounts/login/", {"login": "a@example.com", "password": "y" * 5000})
        assert response.status_code == 413
        assert "Too much data" in response.content.decode()


def test_chunked_body_without_length_is_not_read_and_not_an_error():
    """Without Content-Length (chunked), WSGI gives Django no length; the app must not
    read an unbounded stream, and must not fail."""
    client = _quiet(HTTPSClient())
    stream = CountingStream(50 * 1024 * 1024)
    response = client.generic(
        "POST",
        "/accounts/login/",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": stream},
    )
    assert response.status_code not in (400, 500)
    assert response.status_code < 500
    assert stream.read_bytes <= 2_621_440


def test_too_many_fields_is_413():
    client = _quiet(HTTPSClient())
    body = "&".join(f"f{i}=1" for i in range(1500))
    response = client.generic("POST", "/accounts/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_too_many_query_parameters_is_413():
    client = _quiet(HTTPSClient())
    query = "&".join(f"q{i}=1" for i in range(1500))
    # The login page reads ?next=, so the query string is parsed (and refused).
    assert client.get(f"/accounts/login/?{query}").status_code == 413
    # A page that never parses it just answers.
    assert client.get(f"/livez?{query}").status_code == 200


# "²" and "١٢" pass str.isdigit(); the first makes int() fail, the second parses as 12.
@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "+5", " 12", "0x10", "\u00b2", "\u0661\u0662"])
def test_non_numeric_content_length_is_400(length):
    client = _quiet(HTTPSClient())
    response = client.generic(
        "POST", "/accounts/login/", "login=a", content_type="application/x-www-form-urlencoded", CONTENT_LENGTH=length
    )
    assert response.status_code == 400


# -- forms -------------------------------------------------------------------------


def _signup(client, **overrides):
    data = {
        "full_name": "Ann Example",
        "email": "ann@example.com",
        "company_name": "Foo Ltd",
        "region": "eu",
        "password1": "plum orchard semaphore 1987",
        "password2": "plum orchard semaphore 1987",
    }
    data.update(overrides)
    return client.post("/accounts/signup/", {k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    "overrides",
    [
        {"email": "not-an-email"},
        {"email": "a@b@c"},
        {"email": "x" * 300 + "@example.com"},
        {"email": None},
        {"full_name": None},
        {"company_name": None},
        {"password2": None},
        {"full_name": "N" * 10_000},
        {"company_name": "C" * 10_000},
        {"region": "mars"},
        {"region": "eu' OR '1'='1"},
        {"full_name": "nul\x00byte"},
        {"email": "nul\x00@example.com"},
        {"company_name": "<script>alert(1)</script>" * 10},
    ],
)
def test_malformed_signup_is_a_form_error(client, overrides):
    from vouch.accounts.models import User

    client.raise_request_exception = False
    response = _signup(client, **overrides)
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert "<script>alert(1)" not in response.content.decode()
    assert not User.objects.exists()


def test_signup_with_no_fields_at_all(client):
    client.raise_request_exception = False
    response = client.post("/accounts/signup/", {})
    assert response.status_code == 200
    assert response.content.decode().count("errorlist") >= 3


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"login": "x" * 10_000, "password": "p"},
        {"login": "a@example.com\x00", "password": "p"},
        {"login": ["a@example.com", "b@example.com"], "password": "p"},
        {"login": "a@example.com", "password": "\x00"},
    ],
)
def test_malformed_login_is_a_form_error(client, data):
    client.raise_request_exception = False
    response = client.post("/accounts/login/", data)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_invite_with_bad_input_never_fails(client, owner):
    from vouch.accounts.models import Invitation

    client.raise_request_exception = False
    client.force_login(owner.user)
    for data in (
        {},
        {"email": "nope", "role": "20"},
        {"email": "a@example.com", "role": "owner"},
        {"email": "a@example.com", "role": "99999999999999999999999"},
        {"email": "a@example.com", "role": "40"},  # an owner may not mint owners by invitation? either way no 500
        {"email": "e" * 10_000 + "@example.com", "role": "20"},
    ):
        response = client.post("/members/invite/", data)
        assert response.status_code in (302, 403), data
    assert not Invitation.objects.exclude(role__in=[10, 20, 30, 40]).exists()


# -- URL ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/members/abc/role/"),
        ("post", "/members/-1/role/"),
        ("post", "/members/99999999999999999999999/role/"),
        ("post", "/members/99999999999999999999999/active/"),
        ("post", "/invitations/99999999999999999999999/revoke/"),
        ("post", "/invitations/0/revoke/"),
        ("get", "/invitations/not-a-real-token/"),
        ("get", "/invitations/%00/"),
        ("get", "/outbox/..%2F..%2Fetc%2Fpasswd"),
        ("get", "/outbox/%00.eml"),
        ("get", "/outbox/nope.eml"),
        ("get", "/accounts/confirm-email/garbage/"),
        ("get", "/accounts/password/reset/key/zz-garbage/"),
        ("get", "/members/1/role/extra/"),
        ("post", "/companies/switch/?company=1"),
    ],
)
def test_garbage_ids_are_404(client, owner, method, path):
    client.raise_request_exception = False
    client.force_login(owner.user)
    response = getattr(client, method)(path, {"company": "not-a-uuid", "role": "20", "active": "0"})
    # allauth answers a bad confirmation or reset key with its own "invalid link" page.
    allowed = (200, 404) if "confirm-email" in path or "reset/key" in path else (404,)
    assert response.status_code in allowed


def test_garbage_company_switch_is_404(client, owner):
    client.raise_request_exception = False
    client.force_login(owner.user)
    for value in ("", "1", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "\x00", "' OR 1=1 --"):
        assert client.post("/companies/switch/", {"company": value}).status_code == 404, value


# -- fuzzing every route -----------------------------------------------------------

STR_VALUES = ["x", "..%2F..%2Fetc%2Fpasswd", "%00", "'%20OR%201=1--", "a" * 300, "%F0%9F%92%A9", "%25%32%65"]
INT_VALUES = ["0", "1", "99999999999999999999999"]
# Object ids are uuids: a well-formed one that names nothing reaches the view's lookup.
UUID_VALUES = ["3f2b8c1e-0d4a-4e7b-9c6f-5a1d2e3f4b5c"]
BODIES = [
    {},
    {
        "email": "\x00@x",
        "login": "' OR 1=1 --",
        "password": "x",
        "company": "not-a-uuid",
        "role": "999",
        "full_name": "A" * 10_000,
        "name": "../../etc/passwd",
        "next": "https://evil.example/",
        "code": "0" * 100,
        "active": "maybe",
    },
]
RAW_BODIES = [
    ("application/json", '{"email": [1, 2, {"$gt": ""}]}'),
    ("application/x-www-form-urlencoded", "%%%&&&=%ZZ&a=%ff%fe"),
    ("multipart/form-data; boundary=xyz", '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n'),
    ("multipart/form-data", "no boundary at all"),
]


def _patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def fuzz_paths() -> list[str]:
    paths: set[str] = set()
    for route in _patterns():
        route = route.replace("^", "").replace("$", "")
        values_for = {"int": INT_VALUES, "str": STR_VALUES, "uuid": UUID_VALUES}
        candidates = [route]
        for converter, values in values_for.items():
            candidates = (
                [re.sub(rf"<{converter}:\w+>", value, c, count=1) for c in candidates for value in values]
                if f"<{converter}:" in route
                else candidates
            )
        # Regex routes (allauth's key links): fill each named group.
        candidates = (
            [re.sub(r"\(\?P<\w+>[^)]*\)", value, c) for c in candidates for value in ["zz", "1-%00", "x" * 300]]
            if "(?P<" in route
            else candidates
        )
        paths.update("/" + c for c in candidates)
    return sorted(paths)


def test_the_fuzzer_covers_every_route():
    paths = fuzz_paths()
    resolved = set()
    for path in paths:
        with contextlib.suppress(Resolver404):
            resolved.add(get_resolver().resolve(path.replace("%2F", "/").split("?")[0]).route)
    routes = {r for r in (str(p) for p in _patterns())}
    assert len(paths) > len(routes)
    assert len(resolved) >= len(routes) * 0.8


def _assert_no_server_error(client, label: str, user=None) -> None:
    response_log = []
    for path in fuzz_paths():
        if user is not None:
            client.force_login(user)  # fuzzing /accounts/logout/ must not end the run signed out
        for method in ("get", "post", "head", "put", "delete", "options"):
            if method == "post":
                for body in BODIES:
                    response_log.append((path, method, client.post(path, body).status_code))
                for content_type, raw in RAW_BODIES:
                    response_log.append((path, "raw", client.generic("POST", path, raw, content_type).status_code))
            else:
                response_log.append((path, method, getattr(client, method)(path).status_code))
    failures = [entry for entry in response_log if entry[2] >= 500]
    assert not failures, f"{label}: {failures[:20]}"
    assert len(response_log) > 200


def test_fuzz_every_route_anonymous():
    _assert_no_server_error(_quiet(HTTPSClient()), "anonymous")


def test_fuzz_every_route_signed_in(owner):
    client = _quiet(HTTPSClient())
    _assert_no_server_error(client, "owner", user=owner.user)
