"""Property-based fuzzing of every form a member and a link holder can send (P14,
docs/security/attack-suite.md): hostile values, missing and extra fields, other body
formats. Whatever is posted, the server never answers 5xx, never shows a traceback, and
the data saved before is still there."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from attack import seed
from tests.attack import fuzzing

pytestmark = pytest.mark.server

# Pages whose POST forms are fuzzed ({s} is the seeded data). Link pages first: they are
# public, so anyone holding (or guessing at) a link can post anything to them.
LINK_PAGES = [
    "/c/{s.candidate_token}/",  # the candidate's details and nomination forms
    "/r/{s.referee_tokens[1]}/",  # the referee's confirmation form
    "/r/{s.referee_tokens[0]}/answers/",
    "/r/{s.referee_tokens[2]}/decline/",
]
MEMBER_PAGES = [
    "/requests/",
    "/candidates/",
    "/requests/new/",
    "/requests/{s.request_id}/",
    "/candidates/new/",
    "/candidates/{s.editable_candidate_id}/edit/",
    "/candidates/{s.editable_candidate_id}/",
    "/questionnaires/new/",
    "/company/workflow/",
    "/company/settings/",
    "/members/",
]
PAGES = [(p, False) for p in LINK_PAGES] + [(p, True) for p in MEMBER_PAGES]
# Forms every signed-in page repeats (the company switch) are fuzzed once per process.
FUZZED: set[tuple[str, str]] = set()


def fuzz_form(server, form: fuzzing.Form, token: str, cookies: dict[str, str]) -> None:
    @settings(
        max_examples=fuzzing.EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def posted(data):
        content_type, body = data.draw(fuzzing.submissions(form, token))
        assume(len(body) <= fuzzing.MAX_BODY)
        try:
            response = fuzzing.submit(server, form, content_type, body, cookies)
        except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
            # The server answered (a 4xx) and closed before reading the whole body, as link
            # pages do with a body over their smaller cap: it must still be answering.
            assert fuzzing.get_page(server, "/livez", {}).status == 200, f"POST {form.action}: the server stopped"
            return
        problem = fuzzing.broken(response)
        assert problem is None, (
            f"{form.method.upper()} {form.action} ({content_type}) -> {problem}: {response.text[:800]}"
        )

    posted()


@pytest.mark.parametrize(("template", "signed_in"), PAGES, ids=[p for p, _ in PAGES])
def test_forms_survive_hostile_input(attack_target, template, signed_in):
    server, seeded, before = attack_target
    path = template.format(s=seeded)
    cookies = dict(seeded.cookies) if signed_in else {}
    page = fuzzing.get_page(server, path, cookies)
    # A link page may already have moved on (e.g. the confirm page after a fuzzed confirm
    # succeeded): it still has to answer cleanly, and its forms are fuzzed if it has any.
    assert page.status < 500, f"GET {path} -> {page.status}"
    cookies |= {name: cookie.value for name, cookie in page.cookies().items() if cookie.value}
    forms = [f for f in fuzzing.page_forms(page.text, path) if (f.method, f.action) not in FUZZED]
    token = fuzzing.csrf_token(page)
    if signed_in or template in LINK_PAGES[:2]:
        assert page.status == 200 and token, f"{path}: expected a page with a form (status {page.status})"
    for form in forms:
        FUZZED.add((form.method, form.action))
        fuzz_form(server, form, token or "", cookies)
    assert seed.lost(before, seed.state(server, seeded)) == []
    # The owner is still signed in: no fuzzed form ended the session.
    assert fuzzing.get_page(server, "/dashboard/", seeded.cookies).status == 200
