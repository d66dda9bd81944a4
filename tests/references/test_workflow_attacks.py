"""Attacks on the reference-check workflow (issue #5, "Done when"; P13, P20, P6), over
HTTP through the real pages with the tokens Vouch mailed:

* links cannot be enumerated: every refused link (guessed, malformed, of the other
  purpose, another company's, revoked, expired) is the same neutral 404, byte for
  byte, recorded without the token; guessing from one address is held (429) even for
  a valid link, which still opens from another address;
* links cannot be reused: a submitted referee changes nothing, the candidate of a
  closed request nominates no one, a replaced referee's link is dead;
* referees are kept apart: one referee's link shows nothing of another's answers,
  and no member page; the candidate never sees answers or decline reasons;
* a viewer changes nothing through any POST of the workflow's member pages;
* a member of another company, and a recruiter limited to their own requests, get
  404s (recorded) for requests that are not theirs to see."""

from __future__ import annotations

import html
import os
import re
import secrets
import uuid
from datetime import timedelta
from itertools import count

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Max
from django.urls import URLPattern, reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member, mark_reauthenticated
from tests.references import branding_helpers as logos
from tests.references.helpers import add_candidate, add_file, pdf_bytes
from tests.references.workflow import FULL, IDENTITY, REFEREES, last_token, make_request, nominate
from vouch.accounts.policy import MINIMUM_ROLE, Role
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.context import company_context
from vouch.guard import throttle
from vouch.links import services as links
from vouch.links.decorators import ENDED_REASONS, ended_response, neutral_response
from vouch.links.models import Link
from vouch.references import urls as member_urls
from vouch.references.models import Candidate
from vouch.references.questionnaires import services as questionnaires
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import (
    BulkImport,
    Flag,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
    Severity,
    WorkflowSettings,
)
from vouch.references.requests import flows as request_flows
from vouch.tenancy.router import is_company_app
from vouch.vault.fields import blind_index

pytestmark = pytest.mark.django_db

CANDIDATE_PAGES = ("candidate_link", "candidate_details", "candidate_nominate")
REFEREE_PAGES = ("referee_link", "referee_confirm", "referee_answers", "referee_decline")
NEW_REFEREE = {
    "name": "Nadia Newcomer",
    "email": "nadia@umbrella.example",
    "phone": "07700 900999",
    "relationship": "peer",
    "organisation": "Umbrella",
    "worked_from": "2018-01",
    "worked_to": "2020-01",
}

_addresses = count(1)


# Parallel test workers share the Redis throttle state on the service path: each
# worker draws its addresses from a range of its own.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % 200


def fresh_address() -> dict:
    """A client address of its own, in a network (/24) of its own: each refusal counts
    against both, and refused links are recorded once per network and minute, so tests
    that are not about the throttle or the sampling spread their requests."""
    n = next(_addresses)
    return {"REMOTE_ADDR": f"10.{n & 255}.{(n >> 8) & 255}.{1 + _WORKER}"}


def last_seq() -> int:
    return SecurityEvent.objects.aggregate(m=Max("seq"))["m"] or 0


def link_events(after: int) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(seq__gt=after, action=EventAction.LINK_INVALID).order_by("seq"))


def misses(after: int, company) -> list[SecurityEvent]:
    return list(
        SecurityEvent.objects.filter(
            seq__gt=after, action=EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED, company_id=company.pk
        )
    )


def page(name: str, token: str, **kwargs) -> str:
    return reverse(name, kwargs={"token": token, **kwargs})


def owner_of(company):
    return company.memberships.get(role=Role.OWNER).user


@pytest.fixture
def alpha(db):
    return fast_company("Alpha Hiring")


@pytest.fixture
def bravo(db):
    return fast_company("Bravo Corp")


def new_request(company, actor=None, **overrides) -> tuple[ReferenceRequest, str]:
    email = overrides.pop("email", f"cand-{secrets.token_hex(4)}@example.org")
    return make_request(company, actor or owner_of(company), email=email, **overrides)


def fetch(company, model, pk):
    """The row as stored now, its encrypted values opened inside the company."""
    with company_context(company):
        row = model.objects.get(pk=pk)
        for field in model._meta.concrete_fields:
            getattr(row, field.attname)
    return row


def stored_rows(company, model, **lookup) -> list[tuple]:
    """Rows exactly as stored (ciphertext compares exactly: any rewrite shows)."""
    names = [field.attname for field in model._meta.concrete_fields]
    with company_context(company):
        return list(model.objects.filter(**lookup).order_by("pk").values_list(*names))


def company_snapshot(company) -> dict:
    """Every row of every company-database table, as stored, and the company's links."""
    state = {}
    for model in apps.get_models():
        if not is_company_app(model._meta.app_label) or model._meta.proxy:
            continue
        state[model._meta.label] = stored_rows(company, model)
    state["links"] = list(Link.objects.filter(company=company).order_by("pk").values_list("pk", "revoked_at"))
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before if before[name] != after[name])


def submit_as_referee(client, token: str, extra: dict | None = None, **addr) -> None:
    response = client.post(page("referee_confirm", token), IDENTITY, **addr)
    assert response.status_code == 302, response.status_code
    response = client.post(page("referee_answers", token), {**FULL, **(extra or {}), "action": "submit"}, **addr)
    assert response.status_code == 302, (response.status_code, response.content[:500])


# --- Links cannot be enumerated ------------------------------------------------------


@pytest.fixture
def refused_tokens(alpha, bravo):
    """Every kind of link that must be refused, by the pages it is tried on:
    (label, pages, token, reason recorded)."""
    reference_request, candidate_token = new_request(alpha)
    first, first_token = nominate(alpha, reference_request, REFEREES[0])
    declined, declined_token = nominate(alpha, reference_request, REFEREES[1])
    with company_context(alpha):
        referee_flows.decline(declined, "Not able to help.")
    nominate(alpha, reference_request, REFEREES[2], replacing=declined)  # declined_token is now revoked

    cancelled, cancelled_candidate = new_request(alpha)
    _ref, cancelled_referee = nominate(alpha, cancelled, REFEREES[0])
    with company_context(alpha):
        request_flows.cancel_request(cancelled, actor=owner_of(alpha))

    stale, stale_candidate = new_request(alpha)
    _ref, stale_referee = nominate(alpha, stale, REFEREES[0])
    # Time has passed the link's expiry (the request's deadline), as far as links go.
    past = timezone.now() - timedelta(minutes=1)
    Link.objects.filter(token_hash__in=[links.hash_token(stale_candidate), links.hash_token(stale_referee)]).update(
        expires_at=past
    )

    deleted, deleted_candidate = new_request(alpha)
    with company_context(alpha):
        request_flows.delete_request(deleted, actor=owner_of(alpha))

    _theirs, bravo_candidate = new_request(bravo)
    _ref, bravo_referee = nominate(bravo, _theirs, REFEREES[0])

    guessed = [secrets.token_urlsafe(32) for _ in range(8)] + [secrets.token_urlsafe(16), secrets.token_hex(32)]
    malformed = ["abc", "A" * 19, "A" * 129, "not a token!", "%00" + "A" * 40, "A" * 42 + "=", "' OR 1=1 --"]
    c, r = CANDIDATE_PAGES, REFEREE_PAGES
    cases = [*((f"guessed {i}", c + r, t, "unknown") for i, t in enumerate(guessed))]
    cases += [(f"malformed {t[:8]!r}", c + r, t, "malformed") for t in malformed]
    cases += [
        ("referee token on candidate pages", c, first_token, "wrong_purpose"),
        ("candidate token on referee pages", r, candidate_token, "wrong_purpose"),
        ("another company's referee token on candidate pages", c, bravo_referee, "wrong_purpose"),
        ("another company's candidate token on referee pages", r, bravo_candidate, "wrong_purpose"),
        ("replaced referee", r, declined_token, "revoked"),
        ("cancelled request's candidate", c, cancelled_candidate, "revoked"),
        ("cancelled request's referee", r, cancelled_referee, "revoked"),
        ("deleted request's candidate", c, deleted_candidate, "revoked"),
        ("expired candidate link", c, stale_candidate, "expired"),
        ("expired referee link", r, stale_referee, "expired"),
    ]
    return cases, {"candidate": candidate_token, "referee": first_token, "reference": first}


def test_every_refused_link_is_the_same_neutral_page_recorded_without_the_token(client, refused_tokens):
    """A token never issued, or a real one on the other purpose's pages: the neutral 404.
    A real link that has ended (replaced, cancelled, deleted, expired): the page of a link
    no longer in use, 410. Each the same bytes every time, and recorded without the token."""
    cases, _valid = refused_tokens
    seen = 0
    for label, pages, token, reason in cases:
        for name in pages:
            for method in ("GET", "POST", "autosave"):
                seq = last_seq()
                url = page(name, token)
                if method == "GET":
                    response = client.get(url, **fresh_address())
                else:
                    # The form's POST, and the answers page's autosave fetch (htmx headers too).
                    headers = {"HTTP_X_VOUCH_AUTOSAVE": "1", "HTTP_HX_REQUEST": "true"} if method == "autosave" else {}
                    body = {**IDENTITY, **FULL, "reason": "x", **NEW_REFEREE}
                    response = client.post(url, body, **fresh_address(), **headers)
                where = (label, name, method)
                ended = reason in ENDED_REASONS
                expected = ended_response().content if ended else neutral_response().content
                assert response.status_code == (410 if ended else 404), (*where, response.status_code)
                assert response.content == expected, where
                # The token never leaves in a Referer to another site, nor sits in a cache.
                assert response["Referrer-Policy"] in ("no-referrer", "same-origin"), where
                assert "no-store" in response["Cache-Control"], where
                assert "Set-Cookie" not in response or not response.cookies, where
                events = link_events(seq)
                assert len(events) == 1, where
                assert events[0].details["reason"] == reason, (*where, events[0].details)
                recorded = f"{events[0].target} {events[0].details}"
                assert token not in recorded and token[:12] not in recorded, where
                seen += 1
    assert seen >= 350  # every kind on every page, every way of asking


def test_the_candidates_replace_page_takes_only_its_own_requests_referees(client, alpha, bravo):
    """The one link page with an object id: a referee of another request (same
    company or not) is the neutral page, and nobody is replaced."""
    reference_request, token = new_request(alpha)
    other, _ = new_request(alpha)
    theirs, _ = nominate(alpha, other, REFEREES[0])
    with company_context(alpha):
        referee_flows.decline(theirs, "Cannot help.")
    bravo_request, _ = new_request(bravo)
    bravo_ref, _ = nominate(bravo, bravo_request, REFEREES[0])
    with company_context(bravo):
        referee_flows.decline(bravo_ref, "Cannot help.")
    before_a, before_b = company_snapshot(alpha), company_snapshot(bravo)
    for reference_id in (theirs.pk, bravo_ref.pk, uuid.uuid4()):
        url = page("candidate_replace", token, reference_id=reference_id)
        assert client.get(url, **fresh_address()).content == neutral_response().content
        response = client.post(url, NEW_REFEREE, **fresh_address())
        assert response.status_code == 404 and response.content == neutral_response().content
    assert company_snapshot(bravo) == before_b
    after_a = company_snapshot(alpha)
    # Opening the home page is not part of this; nothing was nominated or replaced.
    assert after_a["references.Reference"] == before_a["references.Reference"]
    assert after_a["links"] == before_a["links"]


def test_ten_failures_from_one_address_hold_its_guesses_but_not_its_valid_links(client, refused_tokens):
    """One guesser behind a shared address must not lock out the real candidates and
    referees on it: their links still open while its guesses are held."""
    _cases, valid = refused_tokens
    attacker = {"REMOTE_ADDR": "203.0.113.77"}
    for _ in range(throttle.CODE_ADDRESS.free):
        assert client.get(page("referee_link", secrets.token_urlsafe(32)), **attacker).status_code == 404
    held = neutral_response(throttled=True).content
    seq = last_seq()
    for _ in range(3):
        response = client.get(page("referee_link", secrets.token_urlsafe(32)), **attacker)
        assert response.status_code == 429
        assert response.content == held
        assert int(response["Retry-After"]) >= 1
    assert not link_events(seq)  # held guesses are neither recorded nor counted
    for name, token in (("candidate_link", valid["candidate"]), ("referee_link", valid["referee"])):
        assert client.get(page(name, token), **attacker).status_code == 200, name
    # A valid POST from the held address goes through too.
    reference = valid["reference"]
    before = fetch_state(reference)
    response = client.post(page("referee_confirm", valid["referee"]), IDENTITY, **attacker)
    assert response.status_code == 302
    assert fetch_state(reference) != before  # the referee's confirmation was kept
    # The same valid links from another address.
    elsewhere = {"REMOTE_ADDR": "198.51.100.23"}
    assert client.get(page("candidate_link", valid["candidate"]), **elsewhere).status_code == 200
    assert client.get(page("referee_link", valid["referee"]), **elsewhere).status_code == 200


def fetch_state(reference: Reference) -> list:
    company = Link.objects.filter(subject_id=reference.pk).select_related("company").first().company
    return stored_rows(company, Reference, pk=reference.pk)


# --- Links cannot be reused ----------------------------------------------------------


def test_a_submitted_referee_can_change_nothing(client, alpha):
    reference_request, _ = new_request(alpha)
    reference, token = nominate(alpha, reference_request, REFEREES[0])
    addr = fresh_address()
    submit_as_referee(client, token, **addr)
    assert fetch(alpha, Reference, reference.pk).status == ReferenceStatus.COMPLETED
    before = company_snapshot(alpha)
    changed_answers = {**FULL, "q-strengths": "Rewritten after submitting", "q-rehire": "no"}
    attempts = [
        ("referee_confirm", {**IDENTITY, "job_title": "Someone else"}, {}),
        ("referee_answers", {**changed_answers, "action": "save"}, {}),
        ("referee_answers", {**changed_answers, "action": "submit"}, {}),
        ("referee_answers", changed_answers, {"HTTP_X_VOUCH_AUTOSAVE": "1"}),
        ("referee_decline", {"reason": "Changed my mind"}, {}),
    ]
    for name, data, headers in attempts:
        response = client.post(page(name, token), data, **addr, **headers)
        assert response.status_code == 409, (name, response.status_code)
        assert company_snapshot(alpha) == before, name
    # The link still opens, on the thank-you page, without the answers to edit.
    home = client.get(page("referee_link", token), **addr)
    assert home.status_code == 200
    assert b"Careful with numbers" not in home.content
    assert b'name="q-strengths"' not in home.content


def test_the_candidate_of_a_completed_request_cannot_nominate(client, alpha):
    reference_request, token = new_request(alpha, referees_required=1)
    reference, referee_token = nominate(alpha, reference_request, REFEREES[0])
    submit_as_referee(client, referee_token, **fresh_address())
    assert fetch(alpha, ReferenceRequest, reference_request.pk).status == RequestStatus.COMPLETED
    before = company_snapshot(alpha)
    addr = fresh_address()
    response = client.post(page("candidate_nominate", token), NEW_REFEREE, **addr)
    assert response.status_code == 409
    response = client.post(page("candidate_details", token), {"name": "Someone Else", "email": "x@example.org"}, **addr)
    assert response.status_code == 409
    response = client.post(page("candidate_replace", token, reference_id=reference.pk), NEW_REFEREE, **addr)
    assert response.status_code == 409
    after = company_snapshot(alpha)
    for table in ("references.Reference", "references.Candidate", "references.ReferenceRequest", "links"):
        assert after[table] == before[table], table


@pytest.mark.parametrize("ending", ["expired", "cancelled"])
def test_the_candidate_of_an_expired_or_cancelled_request_cannot_nominate(client, alpha, ending):
    reference_request, token = new_request(alpha)
    with company_context(alpha):
        if ending == "expired":
            assert request_flows.expire_request(
                reference_request, now=reference_request.deadline + timedelta(seconds=1)
            )
        else:
            request_flows.cancel_request(reference_request, actor=owner_of(alpha))
    before = company_snapshot(alpha)
    for name in CANDIDATE_PAGES:
        response = client.post(page(name, token), {**NEW_REFEREE, "name": "Casey Candidate"}, **fresh_address())
        assert response.status_code == 410 and response.content == ended_response().content, name
    assert company_snapshot(alpha) == before


def test_a_replaced_referees_link_is_dead(client, alpha):
    reference_request, _ = new_request(alpha)
    declined, token = nominate(alpha, reference_request, REFEREES[0])
    addr = fresh_address()
    response = client.post(page("referee_decline", token), {"reason": "On leave for a year"}, **addr)
    assert response.status_code == 302
    nominate(alpha, reference_request, REFEREES[1], replacing=fetch(alpha, Reference, declined.pk))
    before = company_snapshot(alpha)
    for name in REFEREE_PAGES:
        for data in (None, {**IDENTITY, **FULL, "action": "submit", "reason": "Back again"}):
            response = client.get(page(name, token), **addr) if data is None else client.post(page(name, token), data)
            assert response.status_code == 410 and response.content == ended_response().content, name
    assert company_snapshot(alpha) == before


def test_erasing_a_candidate_kills_every_link_of_theirs(client, alpha):
    """An admin erases a candidate on request: their link and their referees' links
    open nothing any more (the neutral page), whatever state each was in."""
    reference_request, c_token = new_request(alpha, referees_required=3)
    tokens = [c_token]
    for i in range(3):
        tokens.append(nominate(alpha, reference_request, REFEREES[i])[1])
    submit_as_referee(client, tokens[1], **fresh_address())
    assert client.post(page("referee_decline", tokens[2]), {"reason": "No"}, **fresh_address()).status_code == 302
    for token, name in zip(tokens, ("candidate_link", *["referee_link"] * 3), strict=True):
        assert client.get(page(name, token), **fresh_address()).status_code == 200  # control
    admin = fast_member(alpha, Role.ADMIN)
    client.force_login(admin.user)
    mark_reauthenticated(client)
    with company_context(alpha):
        name = Candidate.objects.get(pk=reference_request.candidate_id).name
    url = reverse("candidate_erase", kwargs={"candidate_id": reference_request.candidate_id})
    response = client.post(url, {"confirm_name": name})
    assert response.status_code == 302
    client.logout()
    seq = last_seq()
    for token, name in zip(tokens, ("candidate_link", *["referee_link"] * 3), strict=True):
        response = client.get(page(name, token), **fresh_address())
        assert response.status_code == 404 and response.content == neutral_response().content
    assert len(link_events(seq)) == len(tokens)


# --- Referees are kept apart ---------------------------------------------------------

SECRET_ANSWER = "Quietly rebuilt the Zanzibar ledger"
SECRET_TITLE = "Chief Ombudsperson of Yarrowfield"
SECRET_REASON = "I caught them fiddling the Wexcombe expenses"


@pytest.fixture
def three_referees(client, alpha):
    """A request with referee A (open), B (submitted, distinctive answers and title) and
    C (declined, distinctive reason): (request, tokens by letter, references, candidate token)."""
    reference_request, candidate_token = new_request(alpha, referees_required=3)
    (a, a_token), (b, b_token), (c, c_token) = (nominate(alpha, reference_request, REFEREES[i]) for i in range(3))
    addr = fresh_address()
    response = client.post(page("referee_confirm", b_token), {**IDENTITY, "job_title": SECRET_TITLE}, **addr)
    assert response.status_code == 302
    response = client.post(
        page("referee_answers", b_token), {**FULL, "q-anything_else": SECRET_ANSWER, "action": "submit"}, **addr
    )
    assert response.status_code == 302
    assert client.post(page("referee_decline", c_token), {"reason": SECRET_REASON}, **addr).status_code == 302
    stored = fetch(alpha, Reference, b.pk)
    assert stored.answers["anything_else"] == SECRET_ANSWER and stored.identity["job_title"] == SECRET_TITLE
    assert fetch(alpha, Reference, c.pk).decline_reason == SECRET_REASON
    return reference_request, {"a": a_token, "b": b_token, "c": c_token}, {"a": a, "b": b, "c": c}, candidate_token


SECRETS = (SECRET_ANSWER, SECRET_TITLE, SECRET_REASON)


def shows_no_secret(response, where) -> None:
    text = response.content.decode(errors="replace")
    for secret in SECRETS:
        assert secret not in text, (where, secret)


def test_a_referee_sees_nothing_of_another_referees_answers(client, alpha, three_referees):
    reference_request, tokens, refs, _candidate = three_referees
    addr = fresh_address()
    token = tokens["a"]
    for name in REFEREE_PAGES:
        shows_no_secret(client.get(page(name, token), follow=True, **addr), name)
    assert client.post(page("referee_confirm", token), IDENTITY, **addr).status_code == 302
    answers = client.get(page("referee_answers", token), **addr)
    assert answers.status_code == 200  # control: A's own questionnaire is shown
    shows_no_secret(answers, "answers")
    others = stored_rows(alpha, Reference, pk__in=[refs["b"].pk, refs["c"].pk])
    saved = client.post(page("referee_answers", token), {**FULL, "action": "save"}, follow=True, **addr)
    shows_no_secret(saved, "saved")
    # A's saving touched only A's row.
    assert stored_rows(alpha, Reference, pk__in=[refs["b"].pk, refs["c"].pk]) == others
    assert fetch(alpha, Reference, refs["a"].pk).answers["strengths"] == FULL["q-strengths"]


def test_a_referee_sees_no_other_referee_nor_the_candidates_contact_details(client, alpha, three_referees):
    reference_request, tokens, _refs, _candidate = three_referees
    addr = fresh_address()
    token = tokens["a"]
    assert client.post(page("referee_confirm", token), IDENTITY, **addr).status_code == 302
    with company_context(alpha):
        candidate = Candidate.objects.get(pk=reference_request.candidate_id)
        contact = [candidate.email, candidate.phone]
    others = [REFEREES[i][key] for i in (1, 2) for key in ("name", "email", "phone", "organisation")]
    pages = [client.get(page(name, token), follow=True, **addr) for name in REFEREE_PAGES]
    assert candidate.name.encode() in pages[0].content  # control: the referee is told who it is about
    for name, response in zip(REFEREE_PAGES, pages, strict=True):
        text = response.content.decode()
        for value in [*others, *[c for c in contact if c]]:
            assert value not in text, (name, value)


def test_a_referees_link_opens_no_member_page(client, alpha, three_referees):
    """Holding a link (and its device cookie) is no sign-in: the report, the request and
    every member page send the visitor to log in."""
    reference_request, tokens, _refs, _candidate = three_referees
    addr = fresh_address()
    assert client.get(page("referee_link", tokens["a"]), **addr).status_code == 200
    for name, kwargs in (
        ("request_report", {"request_id": reference_request.pk}),
        ("request_report_pdf", {"request_id": reference_request.pk}),
        ("request_detail", {"request_id": reference_request.pk}),
        ("requests", {}),
        ("candidate_export", {"candidate_id": reference_request.candidate_id}),
    ):
        response = client.get(reverse(name, kwargs=kwargs), **addr)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("account_login") + "?next="), name
    # Nor does its token open the other referee's or the candidate's pages.
    for name in CANDIDATE_PAGES:
        assert client.get(page(name, tokens["a"]), **fresh_address()).status_code == 404


def test_the_candidate_never_sees_answers_identity_or_decline_reasons(client, alpha, three_referees):
    reference_request, _tokens, refs, candidate_token = three_referees
    addr = fresh_address()
    home = client.get(page("candidate_link", candidate_token), **addr)
    assert home.status_code == 200
    assert REFEREES[1]["name"].encode() in home.content  # control: the referees are listed
    shows_no_secret(home, "home")
    replace = client.get(page("candidate_replace", candidate_token, reference_id=refs["c"].pk), **addr)
    assert replace.status_code == 200  # control: C declined, so may be replaced
    shows_no_secret(replace, "replace")
    for name in ("candidate_details", "candidate_nominate"):
        shows_no_secret(client.get(page(name, candidate_token), follow=True, **addr), name)
    refused = client.post(page("candidate_nominate", candidate_token), {"name": ""}, **addr)
    assert refused.status_code == 400
    shows_no_secret(refused, "refused nomination")


# --- A viewer changes nothing --------------------------------------------------------


def _deadline(days: int = 30) -> str:
    return (timezone.now() + timedelta(days=days)).date().isoformat()


@pytest.fixture
def member_world(alpha):
    """One of every object the member pages act on, in ``alpha``."""
    owner = owner_of(alpha)
    candidate = add_candidate(alpha, name="Olive Oakley", email="olive@example.org")
    attachment = add_file(alpha, candidate)
    with company_context(alpha):
        questionnaire = questionnaires.create_questionnaire(
            "House template", [{"id": "q1", "type": "text", "prompt": "Why?", "required": True}]
        )
        archived = questionnaires.create_questionnaire(
            "Old template", [{"id": "q1", "type": "text", "prompt": "Why?", "required": True}]
        )
        questionnaires.set_archived(archived, True)
    reference_request, _ = new_request(alpha, owner)
    reference, _ = nominate(alpha, reference_request, REFEREES[0])
    untouched, _ = new_request(alpha, owner)
    with company_context(alpha):
        flag = Flag.objects.create(
            request=reference_request,
            reference=reference,
            kind="shared_network",
            key="shared_network:test",
            severity=Severity.HIGH,
            explanation="The referee answered from the candidate's network.",
        )
    with company_context(alpha):
        job = BulkImport.objects.create(created_by_id=owner.pk, rows=[], shared={}, total=0)
    # A logo, for the branding pages to show and remove.
    logos.set_logo(alpha, alpha.memberships.get(role=Role.OWNER))
    return {
        "import": job,
        "candidate": candidate,
        "attachment": attachment,
        "questionnaire": questionnaire,
        "archived": archived,
        "reference_request": reference_request,
        "untouched": untouched,
        "flag": flag,
    }


QUESTIONNAIRE_FORM = {
    "name": "Viewer's template",
    "count": "1",
    "q-0-id": "q1",
    "q-0-type": "text",
    "q-0-prompt": "Viewer's question?",
    "op": "save",
}


def post_for(name: str, world: dict) -> tuple[dict, dict]:
    """(URL arguments, a POST body the page would accept) for every member page of the
    workflow app: what an owner sending it would change."""
    candidate, reference_request = world["candidate"], world["reference_request"]
    new = {
        "name": "Vera Viewer-Made",
        "email": "vera@example.org",
        "role": "Treasurer",
        "questionnaire": "builtin:general-professional",
        "referees_required": "2",
        "deadline": _deadline(),
        "guidance": "Anyone",
    }
    table = {
        "candidates": ({}, {}),
        "candidate_new": ({}, {"name": "Vera Viewer", "email": "vera@example.org", "confirm": "on"}),
        "candidate_detail": ({"candidate_id": candidate.pk}, {}),
        "candidate_edit": (
            {"candidate_id": candidate.pk},
            {"name": "Renamed", "email": "r@example.org", "confirm": "on"},
        ),
        "candidate_delete": ({"candidate_id": candidate.pk}, {"confirm": "on"}),
        "attachment_upload": (
            {"candidate_id": candidate.pk},
            {"file": SimpleUploadedFile("extra.pdf", pdf_bytes(1000))},
        ),
        "attachment_download": ({"candidate_id": candidate.pk, "attachment_id": world["attachment"].pk}, {}),
        "attachment_delete": ({"candidate_id": candidate.pk, "attachment_id": world["attachment"].pk}, {}),
        "questionnaires": ({}, {}),
        "questionnaire_new": ({}, dict(QUESTIONNAIRE_FORM)),
        "questionnaire_detail": ({"questionnaire_id": world["questionnaire"].pk}, {}),
        "questionnaire_edit": ({"questionnaire_id": world["questionnaire"].pk}, dict(QUESTIONNAIRE_FORM)),
        "questionnaire_copy": ({"questionnaire_id": world["questionnaire"].pk}, {}),
        "questionnaire_archive": ({"questionnaire_id": world["questionnaire"].pk}, {}),
        "questionnaire_restore": ({"questionnaire_id": world["archived"].pk}, {}),
        "requests": ({}, {}),
        "request_new": ({}, new),
        "request_bulk": (
            {},
            {
                **new,
                "csv_text": "name,email,role\nBulk One,bulk1@example.org,Clerk\nBulk Two,bulk2@example.org,Clerk",
            },
        ),
        "request_bulk_progress": ({"import_id": world["import"].pk}, {}),
        "request_detail": ({"request_id": reference_request.pk}, {}),
        "request_cancel": ({"request_id": reference_request.pk}, {"reason": "Filled", "confirm": "True"}),
        "request_delete": ({"request_id": world["untouched"].pk}, {"confirm": "True"}),
        "request_resend": ({"request_id": world["untouched"].pk}, {}),
        "request_deadline": ({"request_id": reference_request.pk}, {"deadline": _deadline(40)}),
        "flag_review": (
            {"request_id": reference_request.pk, "flag_id": world["flag"].pk},
            {"comment": "Checked by phone"},
        ),
        "flag_group_review": (
            {"request_id": reference_request.pk},
            {"flag": [str(world["flag"].pk)], "comment": "Checked by phone"},
        ),
        "referee_flags_review": (
            {"request_id": reference_request.pk, "reference_id": world["flag"].reference_id},
            {"comment": "Checked by phone"},
        ),
        "request_report": ({"request_id": reference_request.pk}, {}),
        "request_report_pdf": ({"request_id": reference_request.pk}, {}),
        "candidate_export": ({"candidate_id": candidate.pk}, {}),
        "candidate_erase": ({"candidate_id": candidate.pk}, {"confirm_name": "Olive Oakley"}),
        "workflow_settings": (
            {},
            {
                "reminder_days": "1, 3",
                "replace_after_days": "2",
                "retention_months": "6",
                "recruiters_see_all": "own",
                "default_deadline_days": "10",
                "default_referees": "3",
            },
        ),
        "requests_export": ({}, {}),
        "notice_preferences": (
            {},
            {
                "reference_completed": "digest",
                "reference_declined": "off",
                "high_flag": "immediately",
                "request_completed": "digest",
                "request_expired": "off",
            },
        ),
        "branding_settings": ({}, {"accent": "#8a1538"}),
        "branding_logo_remove": ({}, {}),
        "branding_logo": ({}, {}),
    }
    assert set(table) == set(POSTED)
    return table[name]


POSTED = (
    "candidates",
    "candidate_new",
    "candidate_detail",
    "candidate_edit",
    "candidate_delete",
    "attachment_upload",
    "attachment_download",
    "attachment_delete",
    "questionnaires",
    "questionnaire_new",
    "questionnaire_detail",
    "questionnaire_edit",
    "questionnaire_copy",
    "questionnaire_archive",
    "questionnaire_restore",
    "requests",
    "request_new",
    "request_bulk",
    "request_bulk_progress",
    "request_detail",
    "request_cancel",
    "request_delete",
    "request_resend",
    "request_deadline",
    "flag_review",
    "flag_group_review",
    "referee_flags_review",
    "request_report",
    "request_report_pdf",
    "candidate_export",
    "candidate_erase",
    "workflow_settings",
    "requests_export",
    "notice_preferences",
    "branding_settings",
    "branding_logo_remove",
    "branding_logo",
)


MEMBER_PAGES = sorted(
    entry.name
    for entry in member_urls.urlpatterns
    if isinstance(entry, URLPattern) and getattr(entry.callback, "vouch_action", None) is not None
)
ACTIONS = {
    entry.name: entry.callback.vouch_action for entry in member_urls.urlpatterns if isinstance(entry, URLPattern)
}
# Pages that only read (a viewer may open them); a POST to them must change nothing.
READ_ONLY = {
    "candidates",
    "candidate_detail",
    "attachment_download",
    "questionnaires",
    "questionnaire_detail",
    "requests",
    "request_detail",
    "request_report",
    "request_report_pdf",
    "requests_export",
    "branding_logo",
}
# A page for recruiters up that only shows something (a background import's progress):
# refused to a viewer like the rest, and nothing for the owner's control to change.
SHOWS_ONLY = {"request_bulk_progress"}
# What reading may write: the activity log (who downloaded what), the stored,
# encrypted copy of a report's PDF, and that a member opened a report (the dashboard's
# "not yet viewed"). None is a change to the company's data.
WRITTEN_BY_READING = {"activity.Entry", "references.ReportFile", "references.ReportView"}


def test_every_member_page_is_in_the_table():
    """A member page added to references/urls.py must get a POST body here (and is
    then attacked by a viewer); the pages taken as read-only are open to viewers."""
    assert set(MEMBER_PAGES) == set(POSTED), set(MEMBER_PAGES) ^ set(POSTED)
    for name in MEMBER_PAGES:
        assert (MINIMUM_ROLE[ACTIONS[name]] == Role.VIEWER) == (name in READ_ONLY), name


@pytest.mark.parametrize("name", MEMBER_PAGES)
def test_a_viewer_changes_nothing(client, alpha, member_world, name):
    viewer = fast_member(alpha, Role.VIEWER)
    client.force_login(viewer.user)
    mark_reauthenticated(client)
    kwargs, data = post_for(name, member_world)
    url = reverse(name, kwargs=kwargs)
    before = company_snapshot(alpha)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(url, data, headers=headers)
        changed = changed_tables(before, company_snapshot(alpha))
        if name in READ_ONLY:
            assert response.status_code < 500, (name, response.status_code)
            assert set(changed) <= WRITTEN_BY_READING, (name, changed)
        else:
            assert response.status_code == 403, (name, response.status_code)
            assert changed == [], name


@pytest.mark.parametrize("name", MEMBER_PAGES)
def test_a_get_changes_nothing_even_for_an_owner(client, alpha, member_world, name):
    """No change by following a link or a prefetch: erase, export, cancel and the rest
    act only on a POST, whoever asks."""
    client.force_login(owner_of(alpha))
    mark_reauthenticated(client)
    kwargs, _data = post_for(name, member_world)
    before = company_snapshot(alpha)
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code in (200, 302, 405), (name, response.status_code)
    changed = changed_tables(before, company_snapshot(alpha))
    assert set(changed) <= (WRITTEN_BY_READING if name in READ_ONLY else set()), (name, changed)


@pytest.mark.parametrize("name", sorted(set(MEMBER_PAGES) - READ_ONLY - SHOWS_ONLY))
def test_control_the_same_post_by_an_owner_changes_something(client, alpha, member_world, name):
    """So the viewer's refusal above is a refusal, not a form that would fail anyway."""
    client.force_login(owner_of(alpha))
    mark_reauthenticated(client)
    kwargs, data = post_for(name, member_world)
    before = company_snapshot(alpha)
    response = client.post(reverse(name, kwargs=kwargs), data)
    assert response.status_code < 500, (name, response.status_code)
    if name == "request_bulk":  # a preview first; its confirmation makes the requests
        assert changed_tables(before, company_snapshot(alpha)) == []
        payload = re.search(r'name="payload" value="([^"]+)"', response.content.decode())
        assert payload, "the bulk preview offers no confirmation"
        response = client.post(reverse(name), {"step": "confirm", "payload": html.unescape(payload.group(1))})
        assert response.status_code < 500
    assert changed_tables(before, company_snapshot(alpha)), (name, response.status_code)


# --- Another company, and recruiters limited to their own -------------------------------


def test_a_member_of_another_company_gets_404_and_a_recorded_miss(client, alpha, bravo):
    reference_request, _ = new_request(alpha)
    reference, _ = nominate(alpha, reference_request, REFEREES[0])
    with company_context(alpha):
        flag = Flag.objects.create(
            request=reference_request, reference=reference, kind="k", key="k", severity=Severity.LOW, explanation="e"
        )
    before = company_snapshot(alpha)
    for role in (Role.VIEWER, Role.RECRUITER, Role.ADMIN):
        client.force_login(fast_member(bravo, role).user)
        for name, kwargs, method, data in (
            ("request_detail", {"request_id": reference_request.pk}, "get", {}),
            ("request_report", {"request_id": reference_request.pk}, "get", {}),
            ("request_report_pdf", {"request_id": reference_request.pk}, "get", {}),
            ("request_cancel", {"request_id": reference_request.pk}, "post", {"confirm": "True"}),
            ("flag_review", {"request_id": reference_request.pk, "flag_id": flag.pk}, "post", {"comment": "Seen"}),
            ("flag_group_review", {"request_id": reference_request.pk}, "post", {"flag": [flag.pk], "comment": "Seen"}),
            (
                "referee_flags_review",
                {"request_id": reference_request.pk, "reference_id": reference.pk},
                "post",
                {"comment": "Seen"},
            ),
        ):
            if method == "post" and role < MINIMUM_ROLE[ACTIONS[name]]:
                continue
            seq = last_seq()
            response = getattr(client, method)(reverse(name, kwargs=kwargs), data)
            assert response.status_code == 404, (role, name, response.status_code)
            assert b"Alpha" not in response.content
            assert len(misses(seq, bravo)) == 1, (role, name)
    assert company_snapshot(alpha) == before


def test_a_recruiter_limited_to_their_own_requests_sees_only_those(client, alpha):
    mine_member, theirs_member = fast_member(alpha, Role.RECRUITER), fast_member(alpha, Role.RECRUITER)
    mine, _ = new_request(alpha, mine_member.user, name="Mona Mine")
    theirs, _ = new_request(alpha, theirs_member.user, name="Theo Theirs")
    with company_context(alpha):
        WorkflowSettings.objects.update_or_create(pk=1, defaults={"recruiters_see_all": False})
    client.force_login(mine_member.user)
    listing = client.get(reverse("requests"))
    assert listing.status_code == 200
    rows = listing.content.decode()
    rows = rows[rows.find("<tbody") :][:1500]
    assert "Mona Mine" in rows and "Theo Theirs" not in rows, rows
    before = company_snapshot(alpha)
    for name, method, data in (
        ("request_detail", "get", {}),
        ("request_report", "get", {}),
        ("request_report_pdf", "get", {}),
        ("request_cancel", "post", {"confirm": "True"}),
        ("request_delete", "post", {"confirm": "True"}),
        ("request_resend", "post", {}),
        ("request_deadline", "post", {"deadline": _deadline(40)}),
    ):
        seq = last_seq()
        response = getattr(client, method)(reverse(name, kwargs={"request_id": theirs.pk}), data)
        assert response.status_code == 404, (name, response.status_code)
        assert len(misses(seq, alpha)) == 1, name
    assert company_snapshot(alpha) == before
    assert client.get(reverse("request_detail", kwargs={"request_id": mine.pk})).status_code == 200
    # Control: the company's other setting shows the recruiter every request.
    with company_context(alpha):
        WorkflowSettings.objects.filter(pk=1).update(recruiters_see_all=True)
    assert client.get(reverse("request_detail", kwargs={"request_id": theirs.pk})).status_code == 200
    assert b"Theo Theirs" in client.get(reverse("requests")).content


def test_a_recruiter_limited_to_their_own_requests_reaches_only_their_candidates(client, alpha):
    """Direct addresses of another recruiter's candidate (page, edit, files, download)
    are 404s, recorded, and change nothing; the list and a search leave them out. A
    candidate shared with one of the recruiter's own requests, and one they added
    with no request yet, stay theirs."""
    mine_member, theirs_member = fast_member(alpha, Role.RECRUITER), fast_member(alpha, Role.RECRUITER)
    _, _ = new_request(alpha, mine_member.user, name="Mona Mine")
    theirs, _ = new_request(alpha, theirs_member.user, name="Theo Theirs", email="theo@example.org")
    shared, _ = new_request(alpha, theirs_member.user, name="Sally Shared", email="sally@example.org")
    new_request(alpha, mine_member.user, name="Sally Shared", email="sally@example.org")
    added_by_other = add_candidate(alpha, name="Otto Other", email="otto@example.org", created_by=theirs_member.user)
    added_by_me = add_candidate(alpha, name="Ada Added", email="ada@example.org", created_by=mine_member.user)
    hidden = [theirs.candidate, added_by_other]
    files = {candidate.pk: add_file(alpha, candidate) for candidate in hidden}
    with company_context(alpha):
        WorkflowSettings.objects.update_or_create(pk=1, defaults={"recruiters_see_all": False})
    client.force_login(mine_member.user)
    listing = client.get(reverse("candidates")).content.decode()
    assert "Mona Mine" in listing and "Sally Shared" in listing and "Ada Added" in listing, listing
    assert "Theo Theirs" not in listing and "Otto Other" not in listing
    assert b"Theo Theirs" not in client.get(reverse("candidates"), {"q": "theo@example.org"}).content
    before = company_snapshot(alpha)
    for candidate in hidden:
        attachment = files[candidate.pk]
        probes = (
            ("candidate_detail", "get", {"candidate_id": candidate.pk}, {}),
            ("candidate_edit", "get", {"candidate_id": candidate.pk}, {}),
            (
                "candidate_edit",
                "post",
                {"candidate_id": candidate.pk},
                {"name": "Changed", "email": "changed@example.org", "phone": "", "notes": "mine now"},
            ),
            (
                "attachment_upload",
                "post",
                {"candidate_id": candidate.pk},
                {"file": SimpleUploadedFile("cv.txt", b"planted")},
            ),
            ("attachment_download", "get", {"candidate_id": candidate.pk, "attachment_id": attachment.pk}, {}),
        )
        for name, method, kwargs, data in probes:
            seq = last_seq()
            response = getattr(client, method)(reverse(name, kwargs=kwargs), data)
            assert response.status_code == 404, (candidate.name, name, method, response.status_code)
            assert candidate.name.encode() not in response.content
            assert len(misses(seq, alpha)) == 1, (name, method)
    assert company_snapshot(alpha) == before
    # Theirs and shared: the recruiter opens and edits the shared one (their own request).
    assert client.get(reverse("candidate_detail", kwargs={"candidate_id": shared.candidate.pk})).status_code == 200
    assert client.get(reverse("candidate_detail", kwargs={"candidate_id": added_by_me.pk})).status_code == 200
    edit = {"name": "Sally Shared", "email": "sally@example.org", "phone": "", "notes": "called"}
    response = client.post(reverse("candidate_edit", kwargs={"candidate_id": shared.candidate.pk}), edit)
    assert response.status_code == 302
    # Control: with every request visible the same addresses open.
    with company_context(alpha):
        WorkflowSettings.objects.filter(pk=1).update(recruiters_see_all=True)
    for candidate in hidden:
        assert client.get(reverse("candidate_detail", kwargs={"candidate_id": candidate.pk})).status_code == 200
        download = reverse("attachment_download", args=[candidate.pk, files[candidate.pk].pk])
        assert client.get(download).status_code == 200
    assert b"Theo Theirs" in client.get(reverse("candidates")).content


# --- Nothing of it in the logs -------------------------------------------------------


def test_the_workflow_pages_log_no_token_and_no_personal_data(client, alpha, logs):
    """Every link page, in every outcome (shown, saved, submitted, declined, refused as
    too late, refused as invalid, held by the throttle), logs its route, never the
    token, the path holding it, or what the candidate and referees typed."""
    reference_request, c_token = new_request(alpha, referees_required=2, name="Lavinia Logless")
    addr = fresh_address()
    assert client.get(page("candidate_link", c_token), **addr).status_code == 200
    details = {"name": "Lavinia Logless", "email": reference_request.candidate.email, "phone": "07700 900765"}
    assert client.post(page("candidate_details", c_token), details, **addr).status_code == 302
    secret_referee = {**NEW_REFEREE, "name": "Ignatius Unlogged", "email": "ignatius@unlogged.example"}
    assert client.post(page("candidate_nominate", c_token), secret_referee, **addr).status_code == 302
    assert client.post(page("candidate_nominate", c_token), {"name": ""}, **addr).status_code == 400
    _answerer, a_token = nominate(alpha, reference_request, REFEREES[1])
    with company_context(alpha):
        decliner = Reference.objects.get(email_index=blind_index("email", "ignatius@unlogged.example"))
    d_token = last_token("ignatius@unlogged.example", "r")
    secret_answer = "Ran the Quendlingham audit single-handed"
    secret_reason = "We fell out over the Plumptre account"
    assert client.get(page("referee_link", a_token), **addr).status_code == 200
    assert client.post(page("referee_confirm", a_token), IDENTITY, **addr).status_code == 302
    autosave = {"HTTP_X_VOUCH_AUTOSAVE": "1"}
    saved = client.post(page("referee_answers", a_token), {"q-strengths": secret_answer}, **addr, **autosave)
    assert saved.status_code == 204
    submit = {**FULL, "q-anything_else": secret_answer, "action": "submit"}
    assert client.post(page("referee_answers", a_token), submit, **addr).status_code == 302
    assert client.post(page("referee_answers", a_token), submit, **addr).status_code == 409
    assert client.post(page("referee_decline", d_token), {"reason": secret_reason}, **addr).status_code == 302
    url = page("candidate_replace", c_token, reference_id=decliner.pk)
    assert client.get(url, **addr).status_code == 200
    assert client.post(url, REFEREES[2], **addr).status_code == 302
    assert client.get(page("referee_link", d_token), **addr).status_code == 410  # replaced: revoked
    guesses = [secrets.token_urlsafe(32) for _ in range(throttle.CODE_ADDRESS.free + 1)]
    held = {"REMOTE_ADDR": "192.0.2.200"}
    statuses = [client.post(page("referee_answers", guess), submit, **held).status_code for guess in guesses]
    assert statuses[-1] == 429
    text = logs.getvalue()
    assert "referee_answers" in text or "r/<str:token>/answers/" in text  # control: the pages were logged
    for token in (c_token, a_token, d_token, *guesses):
        assert token not in text
    assert "/c/" not in text and "/r/" not in text  # no raw path in any form
    for personal in (
        "Lavinia",
        "Logless",
        "Ignatius",
        "Unlogged",
        "ignatius@unlogged.example",
        reference_request.candidate.email,
        secret_answer,
        "Quendlingham",
        secret_reason,
        "Plumptre",
        "07700 900765",
        REFEREES[1]["name"],
        REFEREES[2]["email"],
    ):
        assert personal not in text, personal
