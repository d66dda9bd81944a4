"""The security headers every kind of page must carry (docs/security/encryption.md, "TLS on
the whole app"; docs/security/brute-force.md for link pages), checked on a live server:
public pages, signed-in pages, link pages, the error pages (400, 403, 404, 405, 413) and
a static file."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from dataclasses import dataclass

from attack.findings import Finding
from attack.seed import Seeded
from tests.server import helpers


@dataclass(frozen=True)
class Page:
    kind: str  # public, signed-in, link, error, static
    label: str
    status: int
    fetch: Callable[[object, Seeded], helpers.Response]

    @property
    def personal(self) -> bool:
        """Pages that may hold someone's personal data, and error pages (which may show a
        signed-in member's name): no cache may keep them."""
        return self.kind in {"signed-in", "link", "error"}


def _get(path: str, *, signed_in: bool = False) -> Callable[[object, Seeded], helpers.Response]:
    return lambda server, seeded: helpers.request(
        server, "GET", path.format(s=seeded), cookies=seeded.cookies if signed_in else None
    )


def _raw(method: str, path: str, headers: dict[str, str]) -> Callable[[object, Seeded], helpers.Response]:
    """A request with headers exactly as given (http.client would fix Host and Content-Length)."""

    def fetch(server, seeded: Seeded) -> helpers.Response:
        connection = http.client.HTTPSConnection(
            "localhost", server.https_port, context=helpers.tls_context(server), timeout=20
        )
        try:
            connection.putrequest(method, path.format(s=seeded), skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value.format(port=server.https_port))
            connection.endheaders()
            response = connection.getresponse()
            return helpers.Response(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    return fetch


def _post_without_csrf(server, seeded: Seeded) -> helpers.Response:
    return helpers.request(
        server,
        "POST",
        "/accounts/login/",
        body=b"login=a%40example.com&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


HOST = "localhost:{port}"
PAGES = [
    Page("public", "home", 200, _get("/")),
    Page("public", "sign-in form", 200, _get("/accounts/login/")),
    Page("signed-in", "dashboard", 200, _get("/dashboard/", signed_in=True)),
    Page("signed-in", "requests list (search)", 200, _get("/requests/?q=Casey", signed_in=True)),
    Page("signed-in", "request detail", 200, _get("/requests/{s.request_id}/", signed_in=True)),
    Page("signed-in", "candidates", 200, _get("/candidates/", signed_in=True)),
    Page("link", "candidate link", 200, _get("/c/{s.candidate_token}/")),
    Page("link", "referee questionnaire", 200, _get("/r/{s.referee_tokens[0]}/answers/")),
    Page("link", "referee home (confirmation form)", 200, _get("/r/{s.referee_tokens[1]}/")),
    Page("error", "404 unknown page", 404, _get("/no-such-page/")),
    Page("error", "404 guessed link", 404, _get("/r/" + "A" * 43 + "/")),
    Page("error", "403 form without CSRF token", 403, _post_without_csrf),
    Page("error", "400 unknown Host", 400, _raw("GET", "/", {"Host": "evil.example"})),
    Page("error", "400 bad Content-Length", 400, _raw("POST", "/", {"Host": HOST, "Content-Length": "-1"})),
    Page("error", "405 TRACE", 405, _raw("TRACE", "/", {"Host": HOST})),
    Page(
        "error",
        "405 OPTIONS on a GET-only link page",
        405,
        _raw("OPTIONS", "/r/{s.referee_tokens[1]}/", {"Host": HOST}),
    ),
    Page("error", "413 body too large", 413, _raw("POST", "/", {"Host": HOST, "Content-Length": "999999999"})),
    Page("static", "static file", 200, _get("/static/vouch/favicon.svg")),
]

PERMISSIONS = ("camera=()", "microphone=()", "geolocation=()", "payment=()")


def problems(page: Page, response: helpers.Response) -> list[str]:
    """What ``response`` lacks of what a page of its kind promises."""
    found = []
    if response.status != page.status:
        found.append(f"status {response.status}, expected {page.status}")
    hsts = response.header("Strict-Transport-Security") or ""
    age = re.search(r"max-age=(\d+)", hsts)
    if not age or int(age.group(1)) < 63072000 or "includesubdomains" not in hsts.lower():
        found.append(f"HSTS missing or weak ({hsts!r})")
    if response.header("X-Content-Type-Options") != "nosniff":
        found.append("X-Content-Type-Options: nosniff missing")
    if response.header("Referrer-Policy") != "same-origin":
        found.append(f"Referrer-Policy is {response.header('Referrer-Policy')!r}, not same-origin")
    permissions = response.header("Permissions-Policy") or ""
    if not all(feature in permissions for feature in PERMISSIONS):
        found.append(f"Permissions-Policy missing or incomplete ({permissions!r})")
    if page.kind == "static":
        return found
    csp = response.all("Content-Security-Policy")
    if len(csp) != 1:
        found.append(f"{len(csp)} Content-Security-Policy headers, expected 1")
    else:
        directives = {part.split()[0].lower(): part.split()[1:] for part in csp[0].split(";") if part.split()}
        for name, sources in {
            "default-src": ["'none'"],
            "frame-ancestors": ["'none'"],
            "script-src": ["'self'"],
        }.items():
            if directives.get(name) != sources:
                found.append(f"CSP {name} is {directives.get(name)}, expected {sources}")
        if "unsafe-inline" in csp[0] or "unsafe-eval" in csp[0]:
            found.append("CSP allows unsafe-inline or unsafe-eval")
    if response.header("X-Frame-Options") != "DENY":
        found.append(f"X-Frame-Options is {response.header('X-Frame-Options')!r}, not DENY")
    if page.personal and "no-store" not in (response.header("Cache-Control") or ""):
        found.append(f"Cache-Control without no-store ({response.header('Cache-Control')!r})")
    return found


def check(server, seeded: Seeded) -> list[Finding]:
    """Every page of PAGES fetched once; a finding per page that lacks something."""
    findings = []
    for page in PAGES:
        try:
            response = page.fetch(server, seeded)
        except (OSError, http.client.HTTPException) as exc:
            findings.append(Finding("headers", f"{page.kind} page '{page.label}'", f"request failed: {exc}"))
            continue
        for problem in problems(page, response):
            findings.append(Finding("headers", f"{page.kind} page '{page.label}'", problem))
    return findings
