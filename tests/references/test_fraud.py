"""Fraud signals: the device cookie of the link pages, what ``fraud.record`` keeps (and
does not), and each check of ``fraud.evaluate`` with its negative case.

The first tests go through the real link pages with the test client; the checks are
then driven with requests built as a browser would send them (address, User-Agent,
device cookie) through ``fraud.record``, the function those pages call."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from django.db import connections
from django.test import RequestFactory, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import HTTPSClient, make_company
from tests.references.test_workflow_core import IDENTITY, answers_for
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.links.decorators import DEVICE_COOKIE
from vouch.references.candidates import flows as candidate_flows
from vouch.references.fraud import checks as fraud
from vouch.references.fraud import freemail
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import Flag, ReferenceRequest, Severity, TimelineEvent, Touch
from vouch.vault.fields import blind_index

pytestmark = pytest.mark.django_db

CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
CANDIDATE_IP = "203.0.113.10"
ELSEWHERE_IP = "198.51.100.20"


def browser(ip: str, agent: str = CHROME_ANDROID, device: str | None = "new"):
    """A request as link_required hands it to a link page: the client's address, its
    User-Agent and its link-device cookie (``None``: a client that sent none)."""
    request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    if device is not None:
        request.vouch_link_device = secrets.token_urlsafe(16) if device == "new" else device
    return request


def act(company, reference_request, request, action: str, reference=None) -> Touch | None:
    actor = "referee" if reference is not None else "candidate"
    with company_context(company):
        return fraud.record(request, reference_request, actor=actor, action=action, reference=reference)


def flags_by_kind(company, reference_request) -> dict[str, list[Flag]]:
    with company_context(company):
        found: dict[str, list[Flag]] = {}
        for flag in Flag.objects.filter(request=reference_request).select_related("reference"):
            flag.explanation = str(flag.explanation)
            found.setdefault(flag.kind, []).append(flag)
        return found


@pytest.fixture
def recruiter(members):
    return members[Role.RECRUITER].user


# --- the device cookie and what is stored --------------------------------------------


def test_link_pages_set_a_random_host_only_device_cookie_once(company, recruiter):
    _, token = make_request(company, recruiter)
    client = HTTPSClient()
    first = client.get(reverse("candidate_link", kwargs={"token": token}))
    assert first.status_code == 200
    cookie = first.cookies[DEVICE_COOKIE]
    assert DEVICE_COOKIE.startswith("__Host-")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cookie.value)  # 128 random bits
    assert cookie["secure"] is True and cookie["httponly"] is True
    assert cookie["samesite"] == "Lax" and cookie["path"] == "/" and not cookie["domain"]
    assert int(cookie["max-age"]) == 365 * 24 * 3600
    # Sent back: kept, not set again.
    again = client.get(reverse("candidate_link", kwargs={"token": token}))
    assert DEVICE_COOKIE not in again.cookies
    # Another browser gets another id; a forged, malformed one is replaced.
    other = HTTPSClient().get(reverse("candidate_link", kwargs={"token": token})).cookies[DEVICE_COOKIE]
    assert other.value != cookie.value
    forged = HTTPSClient()
    forged.cookies[DEVICE_COOKIE] = "x' OR 1=1 --"
    replaced = forged.get(reverse("candidate_link", kwargs={"token": token})).cookies[DEVICE_COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", replaced.value)


def test_a_refused_link_gets_no_device_cookie(client):
    response = client.get(reverse("candidate_link", kwargs={"token": "A" * 43}))
    assert response.status_code == 404
    assert DEVICE_COOKIE not in response.cookies


def test_the_first_visit_is_recorded_and_the_raw_cookie_and_address_are_never_stored(company, recruiter):
    reference_request, token = make_request(company, recruiter)
    client = HTTPSClient()
    response = client.get(
        reverse("candidate_link", kwargs={"token": token}), REMOTE_ADDR=CANDIDATE_IP, HTTP_USER_AGENT=CHROME_ANDROID
    )
    cookie = response.cookies[DEVICE_COOKIE].value
    with company_context(company) as ctx:
        touch = Touch.objects.get(request=reference_request)
        assert (touch.actor, touch.action, touch.reference_id) == ("candidate", "opened", None)
        assert touch.ip == CANDIDATE_IP and touch.device_family == "Chrome Mobile on Android"
        assert touch.ip_index == blind_index("text", CANDIDATE_IP)
        assert touch.network_index == blind_index("text", "203.0.113.0/24")
        assert touch.device_index == blind_index("text", f"{cookie}|Chrome Mobile on Android")
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute("SELECT * FROM references_touch")
            row = cursor.fetchone()
    raw = b"".join(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode() for value in row)
    assert cookie.encode() not in raw
    assert CANDIDATE_IP.encode() not in raw and b"203.0.113" not in raw
    assert b"Chrome" not in raw and b"Android" not in raw


def test_device_indexes_differ_between_companies(company, recruiter):
    other = make_company("Globex Hiring")
    same = secrets.token_urlsafe(16)
    reference_request, _ = make_request(company, recruiter)
    other_request, _ = make_request(other, other.memberships.get().user)
    mine = act(company, reference_request, browser(CANDIDATE_IP, device=same), "opened")
    theirs = act(other, other_request, browser(CANDIDATE_IP, device=same), "opened")
    assert mine.device_index and theirs.device_index
    assert mine.device_index != theirs.device_index
    assert mine.ip_index != theirs.ip_index


def test_repeated_page_views_from_one_place_are_kept_once(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    device = secrets.token_urlsafe(16)
    assert act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened") is not None
    assert act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened") is None
    # A new place, or an action that is not a page view, is kept.
    assert act(company, reference_request, browser(ELSEWHERE_IP, device=device), "opened") is not None
    assert act(company, reference_request, browser(CANDIDATE_IP, device=device), "confirmed") is not None
    with company_context(company):
        assert Touch.objects.filter(request=reference_request).count() == 3


def test_garbage_headers_are_recorded_without_matching_anything(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    junk = RequestFactory().get("/", REMOTE_ADDR="not-an-address", HTTP_USER_AGENT="\x00" * 10_000)
    touch = act(company, reference_request, junk, "opened")
    assert touch is not None and touch.ip == "" and touch.ip_index is None and touch.device_index is None
    assert touch.device_family == "Unknown browser"
    # The referee arrives without address or cookie too: two unknowns are not a match.
    act(company, reference_request, RequestFactory().get("/", REMOTE_ADDR=""), "opened", reference)
    assert flags_by_kind(company, reference_request) == {}


# --- shared address or device ----------------------------------------------------------


def test_referee_on_the_candidates_browser_is_flagged_through_the_link_pages(company, recruiter):
    reference_request, candidate_token = make_request(company, recruiter)
    candidate = HTTPSClient()
    where = {"REMOTE_ADDR": CANDIDATE_IP, "HTTP_USER_AGENT": CHROME_ANDROID}
    assert candidate.get(reverse("candidate_link", kwargs={"token": candidate_token}), **where).status_code == 200
    reference, referee_token = nominate(company, reference_request, REFEREES[0])
    honest, honest_token = nominate(company, reference_request, REFEREES[1])
    # The honest referee: their own phone, their own network.
    HTTPSClient().get(
        reverse("referee_link", kwargs={"token": honest_token}), REMOTE_ADDR=ELSEWHERE_IP, HTTP_USER_AGENT=SAFARI_IPHONE
    )
    assert flags_by_kind(company, reference_request) == {}
    # The candidate opens the first referee's link in their own browser.
    assert candidate.get(reverse("referee_link", kwargs={"token": referee_token}), **where).status_code == 200
    flags = flags_by_kind(company, reference_request)
    device, address = flags["device_candidate"][0], flags["ip_candidate"][0]
    assert device.reference_id == reference.pk and device.severity == Severity.HIGH
    assert "same device as the candidate" in device.explanation
    assert "same browser cookie and Chrome Mobile on Android" in device.explanation
    assert address.severity == Severity.HIGH and "same internet address as the candidate" in address.explanation
    assert all(flag.reference_id == reference.pk for kind in flags.values() for flag in kind)
    with company_context(company):
        stored = ReferenceRequest.objects.get(pk=reference_request.pk)
        count = Flag.objects.filter(request=reference_request).count()
        assert (stored.flag_count, stored.open_flags) == (count, count)
        raised = TimelineEvent.objects.filter(request=reference_request, kind="flag_raised")
        assert raised.count() == count
        assert any("Same device as the candidate" in str(event.summary) for event in raised)


def test_shared_address_with_the_candidate_but_another_device(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    act(company, reference_request, browser(CANDIDATE_IP), "opened")
    act(company, reference_request, browser(CANDIDATE_IP, agent=FIREFOX_WINDOWS), "opened", reference)
    flags = flags_by_kind(company, reference_request)
    assert set(flags) >= {"ip_candidate"} and "device_candidate" not in flags


def test_same_cookie_in_another_browser_family_is_not_the_same_device(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    device = secrets.token_urlsafe(16)
    act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened")
    act(company, reference_request, browser(ELSEWHERE_IP, agent=FIREFOX_WINDOWS, device=device), "opened", reference)
    assert flags_by_kind(company, reference_request) == {}


def test_a_referee_elsewhere_raises_nothing(company, recruiter):
    reference_request, _ = make_request(company, recruiter, work_email_required=True)
    first, _ = nominate(company, reference_request, REFEREES[0])
    second, _ = nominate(company, reference_request, REFEREES[1])
    act(company, reference_request, browser(CANDIDATE_IP), "opened")
    act(company, reference_request, browser(ELSEWHERE_IP, agent=SAFARI_IPHONE), "opened", first)
    act(company, reference_request, browser("192.0.2.30", agent=FIREFOX_WINDOWS), "opened", second)
    assert flags_by_kind(company, reference_request) == {}


def test_two_referees_on_one_device_or_one_address(company, recruiter):
    reference_request, _ = make_request(company, recruiter, referees_required=3)
    first, _ = nominate(company, reference_request, REFEREES[0])
    second, _ = nominate(company, reference_request, REFEREES[1])
    third, _ = nominate(company, reference_request, REFEREES[2])
    act(company, reference_request, browser(CANDIDATE_IP), "opened")
    shared = secrets.token_urlsafe(16)
    act(company, reference_request, browser(ELSEWHERE_IP, device=shared), "opened", first)
    act(company, reference_request, browser(ELSEWHERE_IP, device=shared), "confirmed", second)
    # The third shares only an office address with the first.
    act(company, reference_request, browser(ELSEWHERE_IP, agent=FIREFOX_WINDOWS), "opened", third)
    flags = flags_by_kind(company, reference_request)
    [device] = flags["device_referee"]
    assert device.severity == Severity.HIGH and device.reference_id == second.pk
    assert "Rita Referee" in device.explanation
    assert "same browser cookie and Chrome Mobile on Android" in device.explanation
    addresses = {flag.reference_id: flag for flag in flags["ip_referee"]}
    assert set(addresses) == {second.pk, third.pk}
    assert all(flag.severity == Severity.MEDIUM for flag in addresses.values())
    # Nothing was shared with the candidate.
    assert not {"device_candidate", "ip_candidate", "quick_open_network"} & set(flags)


# --- contact details -------------------------------------------------------------------


def test_referee_with_the_candidates_phone_or_email(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    # The candidate's own number, written another way.
    reference, _ = nominate(company, reference_request, {**REFEREES[0], "phone": "+44 7700 900456"})
    honest, _ = nominate(company, reference_request, REFEREES[1])
    with company_context(company):
        fraud.evaluate(reference_request)
    flags = flags_by_kind(company, reference_request)
    [phone] = flags["phone_candidate"]
    assert phone.reference_id == reference.pk and phone.severity == Severity.HIGH
    assert "candidate's own" in phone.explanation
    assert "email_candidate" not in flags
    # The candidate later gives the honest referee's address as their own.
    with company_context(company):
        candidate_flows.confirm_candidate(reference_request, name="Casey Candidate", email=REFEREES[1]["email"].upper())
        fraud.evaluate(reference_request)
    [email] = flags_by_kind(company, reference_request)["email_candidate"]
    assert email.reference_id == honest.pk and email.severity == Severity.HIGH


def test_referee_contact_reused_for_another_candidate(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    # The same candidate asked again, with the same referee: not a signal.
    again, _ = make_request(company, recruiter, role="Finance Director")
    nominate(company, again, REFEREES[0])
    with company_context(company):
        fraud.evaluate(reference_request)
    assert flags_by_kind(company, reference_request) == {}
    # Another candidate gives the same referee's email (other name, other phone).
    other, _ = make_request(company, recruiter, name="Dana Other", email="dana@example.net", phone="")
    nominate(company, other, {**REFEREES[1], "email": "RITA@acme-widgets.example"})
    # And a third gives the same phone number.
    third, _ = make_request(company, recruiter, name="Eli Third", email="eli@example.net", phone="")
    nominate(company, third, {**REFEREES[2], "phone": REFEREES[0]["phone"]})
    with company_context(company):
        fraud.evaluate(reference_request)
    flags = flags_by_kind(company, reference_request)
    [email], [phone] = flags["email_reused"], flags["phone_reused"]
    assert email.reference_id == reference.pk and email.severity == Severity.MEDIUM
    assert "another candidate" in email.explanation and "(1 other request)" in email.explanation
    assert phone.severity == Severity.MEDIUM and "phone number" in phone.explanation
    # The other candidates' requests were checked at once, and flagged from their side.
    assert set(flags_by_kind(company, other)) == {"email_reused"}
    assert set(flags_by_kind(company, third)) == {"phone_reused"}
    with company_context(company):
        assert ReferenceRequest.objects.get(pk=other.pk).open_flags == 1
    # A fourth candidate gives the same email: the standing flags say so, none is raised twice.
    fourth, _ = make_request(company, recruiter, name="Fay Fourth", email="fay@example.net", phone="")
    nominate(company, fourth, {**REFEREES[1], "email": REFEREES[0]["email"]})
    with company_context(company):
        fraud.evaluate(fourth)
    [email] = flags_by_kind(company, reference_request)["email_reused"]
    assert "(2 other requests)" in email.explanation
    assert len(flags_by_kind(company, other)["email_reused"]) == 1
    # From Dana's side: Casey's two requests and Fay's.
    assert "(3 other requests)" in flags_by_kind(company, other)["email_reused"][0].explanation
    with company_context(company):
        assert ReferenceRequest.objects.get(pk=reference_request.pk).open_flags == 2


# --- free mail -------------------------------------------------------------------------


def test_free_mail_where_a_work_address_was_required(company, recruiter):
    reference_request, _ = make_request(company, recruiter, work_email_required=True)
    free, _ = nominate(company, reference_request, {**REFEREES[0], "email": "rita.referee@GMail.com"})
    nominate(company, reference_request, REFEREES[1])
    with company_context(company):
        fraud.evaluate(reference_request)
    [flag] = flags_by_kind(company, reference_request)["free_mail"]
    assert flag.reference_id == free.pk and flag.severity == Severity.MEDIUM
    assert "gmail.com" in flag.explanation and "work email" in flag.explanation


def test_free_mail_is_not_flagged_when_no_work_address_was_asked_for(company, recruiter):
    reference_request, _ = make_request(company, recruiter, work_email_required=False)
    nominate(company, reference_request, {**REFEREES[0], "email": "rita.referee@gmail.com"})
    with company_context(company):
        assert fraud.evaluate(reference_request) == []


def test_the_free_mail_list():
    assert freemail.is_free_mail("someone@outlook.com") and freemail.is_free_mail("a@proton.me")
    assert freemail.is_free_mail("Someone@Yahoo.co.uk.")
    assert not freemail.is_free_mail("rita@acme-widgets.example")
    assert not freemail.is_free_mail("no-at-sign") and not freemail.is_free_mail("")


# --- timing ----------------------------------------------------------------------------


def _answer(company, reference_request, reference):
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        referee_flows.referee_opened(reference)
        referee_flows.confirm_referee(reference, **IDENTITY)
        assert referee_flows.submit_answers(reference, answers_for(reference_request)) == {}


def test_answers_submitted_implausibly_fast(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    act(company, reference_request, browser(ELSEWHERE_IP), "opened", reference)
    _answer(company, reference_request, reference)
    act(company, reference_request, browser(ELSEWHERE_IP), "submitted", reference)
    [flag] = flags_by_kind(company, reference_request)["fast_answers"]
    with company_context(company):
        questions = len(reference_request.questionnaire_version.questions)
    assert flag.reference_id == reference.pk and flag.severity == Severity.MEDIUM
    assert f"answered the {questions} questions in" in flag.explanation
    least = max(60, 8 * questions)
    assert f"at least {least // 60} minutes" in flag.explanation or f"at least {least} seconds" in flag.explanation


def test_answers_taking_a_plausible_time_are_not_flagged(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    act(company, reference_request, browser(ELSEWHERE_IP), "opened", reference)
    _answer(company, reference_request, reference)
    with company_context(company):
        questions = len(reference_request.questionnaire_version.questions)
        earlier = timedelta(seconds=max(60, 8 * questions) + 5)
        stored = reference.__class__.objects.get(pk=reference.pk)
        Touch.objects.filter(reference=reference).update(at=stored.submitted_at - earlier)
        reference.__class__.objects.filter(pk=reference.pk).update(opened_at=stored.submitted_at - earlier)
        fraud.evaluate(reference_request)
    assert "fast_answers" not in flags_by_kind(company, reference_request)


def _nominated_ago(company, reference, minutes: int) -> None:
    with company_context(company):
        stored = reference.__class__.objects.get(pk=reference.pk)
        reference.__class__.objects.filter(pk=reference.pk).update(
            nominated_at=stored.nominated_at - timedelta(minutes=minutes)
        )


def test_referee_opening_within_minutes_from_the_candidates_network(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    _nominated_ago(company, reference, 3)
    act(company, reference_request, browser("203.0.113.10"), "nominated")
    # Another address of the same /24, another browser: only the network and the timing match.
    act(company, reference_request, browser("203.0.113.77", agent=SAFARI_IPHONE), "opened", reference)
    flags = flags_by_kind(company, reference_request)
    [flag] = flags["quick_open_network"]
    assert flag.severity == Severity.HIGH and "3 minutes after the candidate nominated them" in flag.explanation
    assert not {"ip_candidate", "device_candidate"} & set(flags)


def test_ipv6_networks_are_compared_by_their_64(company, recruiter):
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    act(company, reference_request, browser("2001:db8:1:2::10"), "nominated")
    act(company, reference_request, browser("2001:db8:1:2:abcd::99", agent=SAFARI_IPHONE), "opened", reference)
    [flag] = flags_by_kind(company, reference_request)["quick_open_network"]
    assert "opened their link less than a minute after the candidate nominated them" in flag.explanation
    # Another /64 of the same provider is another network.
    other, _ = nominate(company, reference_request, REFEREES[1])
    act(company, reference_request, browser("2001:db8:1:3::10", agent=FIREFOX_WINDOWS), "opened", other)
    assert len(flags_by_kind(company, reference_request)["quick_open_network"]) == 1


def test_no_quick_open_flag_from_another_network_or_later(company, recruiter):
    reference_request, _ = make_request(company, recruiter, referees_required=2)
    elsewhere, _ = nominate(company, reference_request, REFEREES[0])
    later, _ = nominate(company, reference_request, REFEREES[1])
    act(company, reference_request, browser(CANDIDATE_IP), "nominated")
    act(company, reference_request, browser(ELSEWHERE_IP, agent=SAFARI_IPHONE), "opened", elsewhere)
    _nominated_ago(company, later, 11)
    act(company, reference_request, browser("203.0.113.77", agent=SAFARI_IPHONE), "opened", later)
    assert "quick_open_network" not in flags_by_kind(company, reference_request)


# --- idempotence -----------------------------------------------------------------------


def test_evaluating_again_raises_nothing_twice(company, recruiter):
    reference_request, _ = make_request(company, recruiter, work_email_required=True)
    reference, _ = nominate(company, reference_request, {**REFEREES[0], "email": "rita@gmail.com"})
    device = secrets.token_urlsafe(16)
    act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened")
    act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened", reference)
    with company_context(company):
        before = Flag.objects.filter(request=reference_request).count()
        assert before >= 3
        assert fraud.evaluate(reference_request) == []
        assert fraud.evaluate(reference_request) == []
        assert Flag.objects.filter(request=reference_request).count() == before
        assert TimelineEvent.objects.filter(request=reference_request, kind="flag_raised").count() == before
        assert ReferenceRequest.objects.get(pk=reference_request.pk).flag_count == before


def test_evaluate_stays_cheap(company, recruiter):
    """A handful of queries however many touches: evaluate runs after every new touch."""
    reference_request, _ = make_request(company, recruiter, referees_required=3, work_email_required=True)
    references = [nominate(company, reference_request, referee)[0] for referee in REFEREES]
    for number in range(10):
        act(company, reference_request, browser(f"192.0.2.{number}"), "confirmed")
        for reference in references:
            act(company, reference_request, browser(f"198.51.{number}.7", agent=SAFARI_IPHONE), "confirmed", reference)
    _answer(company, reference_request, references[0])
    with company_context(company) as ctx:
        assert Touch.objects.filter(request=reference_request).count() == 40
        assert fraud.evaluate(reference_request)  # the fast answers, raised once
        with CaptureQueriesContext(connections[ctx.alias]) as queries:
            assert fraud.evaluate(reference_request) == []
    assert len(queries) <= 6, [query["sql"] for query in queries]


def test_a_forged_forwarded_for_header_does_not_hide_the_address(company, recruiter):
    """Vouch is not behind a trusted proxy here: X-Forwarded-For is the client's own
    claim, and a candidate posing as their referee cannot launder their address with it."""
    reference_request, candidate_token = make_request(company, recruiter)
    HTTPSClient().get(reverse("candidate_link", kwargs={"token": candidate_token}), REMOTE_ADDR=CANDIDATE_IP)
    reference, referee_token = nominate(company, reference_request, REFEREES[0])
    # A fresh private window (no cookie), another browser, and a made-up forwarded address.
    HTTPSClient().get(
        reverse("referee_link", kwargs={"token": referee_token}),
        REMOTE_ADDR=CANDIDATE_IP,
        HTTP_USER_AGENT=FIREFOX_WINDOWS,
        HTTP_X_FORWARDED_FOR=ELSEWHERE_IP,
    )
    with company_context(company):
        touch = Touch.objects.get(reference=reference)
        assert touch.ip == CANDIDATE_IP and touch.device_family == "Firefox on Windows"
    flags = flags_by_kind(company, reference_request)
    assert "ip_candidate" in flags and "quick_open_network" in flags
    assert "device_candidate" not in flags
