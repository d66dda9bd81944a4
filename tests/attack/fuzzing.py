"""What the property-based fuzzer of tests/attack/ is made of: the forms of a page (read
from its HTML, so a field added to a form is fuzzed without anyone listing it), the
strategies for hostile field values and bodies, and one POST to a live server.

The example count comes from VOUCH_ATTACK_EXAMPLES: small under `make test`, larger under
`make attack` (docs/security/attack-suite.md)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, quote_from_bytes, urlsplit

from hypothesis import strategies as st

from tests.server import helpers

EXAMPLES = int(os.environ.get("VOUCH_ATTACK_EXAMPLES", "4"))
# Vouch answers a body over VOUCH_MAX_BODY_BYTES (default 2.5 MiB) with 413 before reading it
# and closes the connection, so a client still sending sees it reset: such bodies are not
# drawn here (the 413 is checked by make attack's header step and tests/server/test_limits.py).
MAX_BODY = 2_621_440

# Forms that end the session, destroy data or lock the owner out (allowed networks, 2FA
# required) are not fuzzed: everything after them would test a signed-out or emptied
# account. Each has attack tests of its own (tests/tenancy, tests/guard, tests/references).
SKIPPED_ACTIONS = re.compile(r"/(logout|delete|erase|cancel|end|end-others|revoke|security)/(\?|$)|/company/delete/")


@dataclass
class Form:
    action: str  # a path
    method: str
    enctype: str
    fields: dict[str, list[str]] = field(default_factory=dict)  # name -> values as drawn (hidden ones kept)
    choices: dict[str, list[str]] = field(default_factory=dict)  # select/radio/checkbox values


class _FormParser(HTMLParser):
    def __init__(self, page_path: str) -> None:
        super().__init__()
        self.page_path = page_path
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            action = a.get("action") or self.page_path
            self._current = Form(
                action=urlsplit(action).path or self.page_path,
                method=(a.get("method") or "get").lower(),
                enctype=a.get("enctype") or "application/x-www-form-urlencoded",
            )
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag in ("input", "textarea", "button") and a.get("name"):
            name = a["name"]
            kind = a.get("type", "text").lower()
            if kind in ("radio", "checkbox", "submit"):
                self._current.choices.setdefault(name, []).append(a.get("value", "on"))
            self._current.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._current.fields.setdefault(self._select, [])
        elif tag == "option" and self._select:
            self._current.choices.setdefault(self._select, []).append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


def page_forms(html: str, page_path: str) -> list[Form]:
    """The forms of a page that may be fuzzed (see SKIPPED_ACTIONS): POST forms, and GET
    forms (searches and filters) whose fields go into the query string."""
    parser = _FormParser(page_path)
    parser.feed(html)
    return [f for f in parser.forms if f.method in ("post", "get") and not SKIPPED_ACTIONS.search(f.action)]


# --- values -----------------------------------------------------------------------------

HOSTILE = [
    "' OR '1'='1' --",
    "1; DROP TABLE references_candidate; --",
    "<script>alert(1)</script>",
    "{{7*7}}{% debug %}",
    "../../../../etc/passwd",
    "%00",
    "\x00",
    "9" * 400,
    "-1",
    "1e309",
    "NaN",
    "Infinity",
    "0000-00-00",
    "2024-13-45",
    "9999-12-31",
    "10000-01",
    "\u202e\u200b\ufeff",
    "a@b",
    "x" * 300 + "@example.com",
    "\r\nBcc: victim@example.com",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🙂 ℌ",
]

text_values = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20).map(lambda s: s * 200),  # long
    st.sampled_from(HOSTILE),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),  # huge numbers
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
raw_values = st.binary(max_size=40)  # not UTF-8 at all, percent-encoded as bytes


def field_values(form: Form, name: str) -> st.SearchStrategy[list[bytes]]:
    """One field's values: usually one, sometimes none or several (a list where a string is
    expected); drawn from the page's own choices too, so valid paths are reached."""
    own = form.choices.get(name, []) + [v for v in form.fields.get(name, []) if v]
    single = st.one_of(
        text_values.map(lambda s: s.encode("utf-8", "surrogatepass")),
        raw_values,
        *([st.sampled_from(own).map(str.encode)] if own else []),
    )
    return st.lists(single, min_size=0, max_size=3).filter(lambda values: True)


@st.composite
def submissions(draw, form: Form, token: str) -> tuple[str, bytes]:
    """(content type, body) of one hostile submission of ``form``: its fields fuzzed,
    some left out, unknown ones added; mostly a normal form post, sometimes JSON or
    multipart with the same fields, or bytes that are no format at all."""
    pairs: list[tuple[str, bytes]] = []
    if form.method == "post" and draw(st.integers(0, 19)) > 0:  # now and then no CSRF token: a 403, never a 500
        pairs.append(("csrfmiddlewaretoken", token.encode()))
    for name in form.fields:
        if name == "csrfmiddlewaretoken":
            continue
        pairs += [(name, value) for value in draw(field_values(form, name))]
    extras = draw(st.lists(st.tuples(st.text(min_size=1, max_size=12), text_values), max_size=2))
    pairs += [(name, value.encode("utf-8", "surrogatepass")) for name, value in extras]
    kind = "form" if form.method == "get" else draw(st.sampled_from(["form"] * 6 + ["multipart", "json", "garbage"]))
    if kind == "form":
        body = "&".join(f"{quote(n, safe='')}={quote_from_bytes(v, safe='')}" for n, v in pairs).encode()
        return "application/x-www-form-urlencoded", body
    if kind == "multipart":
        boundary = "vouchfuzzboundary"
        parts = [
            b"--"
            + boundary.encode()
            + b'\r\nContent-Disposition: form-data; name="'
            + n.replace('"', "").encode("utf-8", "surrogatepass")
            + b'"\r\n\r\n'
            + v
            + b"\r\n"
            for n, v in pairs
        ]
        return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()
    if kind == "json":
        return "application/json", json.dumps({n: v.decode("utf-8", "replace") for n, v in pairs}).encode()
    return draw(st.sampled_from(["application/x-www-form-urlencoded", "text/plain"])), draw(st.binary(max_size=200))


# --- the server -------------------------------------------------------------------------


def get_page(server, path: str, cookies: dict[str, str]) -> helpers.Response:
    return helpers.request(server, "GET", path, cookies=cookies)


def csrf_token(page: helpers.Response) -> str | None:
    match = re.search(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"', page.text)
    return match.group(1) if match else None


def submit(server, form: Form, content_type: str, body: bytes, cookies: dict[str, str]) -> helpers.Response:
    """``body`` posted to the form's action, or for a GET form sent as its query string."""
    if form.method == "get":
        return helpers.request(server, "GET", f"{form.action}?{body.decode('latin-1')}", cookies=cookies, timeout=60)
    return helpers.request(
        server,
        "POST",
        form.action,
        body=body,
        cookies=cookies,
        headers={"Content-Type": content_type, "Referer": f"{server.url}{form.action}", "Origin": server.url},
        timeout=60,
    )


def broken(response: helpers.Response) -> str | None:
    """Why ``response`` breaks the property (a 5xx, or a traceback shown), or None."""
    if response.status >= 500:
        return f"status {response.status}"
    if b"Traceback (most recent call last)" in response.body or b"django.core.exceptions" in response.body:
        return "a traceback in the page"
    return None
