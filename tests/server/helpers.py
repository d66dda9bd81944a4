"""Talk to a real `vouch serve` (see tests/live.py) the way a browser would: raw HTTPS
requests with exact headers, Set-Cookie parsing, and a member who signs in through
the real login form. The bench uses the same helpers (bench/harness.py)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlencode

PASSWORD = "correct horse battery staple 42"


def tls_context(server, *, minimum=None, maximum=None, ciphers: str | None = None, cafile=None) -> ssl.SSLContext:
    """A client context that trusts only the server's development certificate (or ``cafile``)."""
    context = ssl.create_default_context(cafile=str(cafile or server.cert_path))
    # HTTP/1.1 only: exact header and cookie checks need one response per request.
    context.set_alpn_protocols(["http/1.1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is deprecated: that is the point
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if ciphers:
        context.set_ciphers(ciphers)
    return context


def handshake(server, context: ssl.SSLContext, port: int | None = None) -> tuple[str, str]:
    """Do a TLS handshake; return (protocol version, cipher name). Raises ssl.SSLError if refused."""
    with (
        socket.create_connection(("127.0.0.1", port or server.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version(), tls.cipher()[0]


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def cookies(self) -> dict[str, Cookie]:
        parsed = (parse_set_cookie(value) for value in self.all("Set-Cookie"))
        return {cookie.name: cookie for cookie in parsed}


@dataclass
class Cookie:
    name: str
    value: str
    attributes: dict[str, str] = field(default_factory=dict)  # lower-cased names; flags map to ""

    def has(self, attribute: str) -> bool:
        return attribute.lower() in self.attributes

    def get(self, attribute: str) -> str | None:
        return self.attributes.get(attribute.lower())


def parse_set_cookie(header: str) -> Cookie:
    """One Set-Cookie header, parsed as RFC 6265 says (no folding of several cookies)."""
    first, *rest = header.strip().split(";")
    name, _, value = first.strip().partition("=")
    attributes = {}
    for item in rest:
        key, _, val = item.strip().partition("=")
        if key:
            attributes[key.strip().lower()] = val.strip()
    return Cookie(name=name.strip(), value=value.strip(), attributes=attributes)


def request(
    server,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    cookies: dict[str, str] | None = None,
    timeout: float = 20,
    cafile=None,
) -> Response:
    """One HTTPS request to the live server, certificate verified, nothing followed."""
    connection = http.client.HTTPSConnection(
        "localhost", server.https_port, context=tls_context(server, cafile=cafile), timeout=timeout
    )
    try:
        all_headers = dict(headers or {})
        if cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def http_request(server, method: str, path: str, *, host: str | None = None) -> Response:
    """One plain-HTTP request to the redirect port, with the exact request target and Host given."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"localhost:{server.http_port}")
        connection.endheaders()
        response = connection.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def run_django(server, code: str) -> str:
    """Run Python with Django set up against ``server``'s database; return its stdout."""
    env = {**server.env, "DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_LOG_LEVEL": "WARNING"}
    script = "import django\ndjango.setup()\n" + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"Django snippet failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create_member(server, email: str, company_name: str, password: str = PASSWORD, region: str = "eu") -> dict:
    """A verified user owning a new company, made directly in the server's database."""
    params = json.dumps({"email": email, "password": password, "company": company_name, "region": region})
    output = run_django(
        server,
        f"""
        import json
        from allauth.account.models import EmailAddress
        from vouch.accounts.models import User
        from vouch.tenancy.services import create_company
        p = json.loads({params!r})
        user = User.objects.create_user(p["email"], p["password"], full_name="Live Tester")
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        company = create_company(p["company"], p["region"], user)
        print(json.dumps({{"user_id": user.pk, "company_id": str(company.pk)}}))
        """,
    )
    return json.loads(output.strip().splitlines()[-1])


_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


def csrf_form(server, path: str) -> tuple[str, str, Response]:
    """GET a form; return (CSRF cookie value, form token, the response)."""
    page = request(server, "GET", path)
    assert page.status == 200, f"GET {path} gave {page.status}"
    cookie = page.cookies()["__Host-csrftoken"]
    match = _CSRF_INPUT.search(page.text)
    assert match, f"no csrfmiddlewaretoken in {path}"
    return cookie.value, unescape(match.group(1)), page


def post_form(server, path: str, fields: dict[str, str], cookies: dict[str, str]) -> Response:
    return request(
        server,
        "POST",
        path,
        body=urlencode(fields).encode(),
        cookies=cookies,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"{server.url}{path}",
            "Origin": server.url,
        },
    )


def login(server, email: str, password: str = PASSWORD) -> Response:
    """Sign in through allauth's login form; return the POST's response (a redirect on success)."""
    csrf_cookie, token, _ = csrf_form(server, "/accounts/login/")
    return post_form(
        server,
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "login": email, "password": password},
        cookies={"__Host-csrftoken": csrf_cookie},
    )


def session_cookie(server, email: str, password: str = PASSWORD) -> str:
    response = login(server, email, password)
    assert response.status == 302, f"login gave {response.status}: {response.text[:500]}"
    return response.cookies()["__Host-vouch_session"].value


class Connection:
    """One keep-alive HTTPS connection (as a browser has), reopened if the server closes it."""

    def __init__(self, live) -> None:
        self.live = live
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
        for _ in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    "localhost", self.live.https_port, context=tls_context(self.live), timeout=30
                )
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
        raise RuntimeError(f"{method} {path} failed twice")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
