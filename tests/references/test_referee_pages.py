"""The referee's pages under their private link (issue #5, step 3), driven through the
real pages with the tokens Vouch mailed: confirm, answer (saved as they go), submit
or decline; afterwards the link shows only a closing page and changes nothing."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.references.workflow import FULL, IDENTITY, REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.request_models import (
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
    TimelineEvent,
    Touch,
)
from vouch.references.requests import flows as request_flows

pytestmark = pytest.mark.django_db


def url(token: str, page: str = "") -> str:
    return f"/r/{token}/{page}"


@pytest.fixture
def setup(company, members):
    """A request with one nominated referee: (request, reference, referee token)."""
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, token = nominate(company, reference_request, REFEREES[0])
    return reference_request, reference, token


def load(company, reference) -> Reference:
    """The reference as stored now, its encrypted fields opened (inside the company)."""
    with company_context(company):
        fresh = Reference.objects.get(pk=reference.pk)
        fresh.name  # noqa: B018 - opens the row's encrypted values while the key is at hand
    return fresh


def confirmed(client, token: str) -> None:
    response = client.post(url(token, "confirm/"), IDENTITY)
    assert response.status_code == 302 and response["Location"] == url(token, "answers/")


# --- Step 1 --------------------------------------------------------------------------


def test_home_says_who_is_asking_and_marks_the_link_opened(client, company, setup):
    reference_request, reference, token = setup
    response = client.get(url(token))
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("Acme Hiring", "Casey Candidate", "Head of Finance", "Confirm who you are", "will not see them"):
        assert text in page, text
    assert 'href="decline/"' in page and 'action="confirm/"' in page
    assert token not in page  # sibling pages are linked relatively: the token stays in the address bar
    assert response["Referrer-Policy"] and "no-store" in response["Cache-Control"]
    fresh = load(company, reference)
    assert fresh.status == ReferenceStatus.OPENED and fresh.opened_at is not None
    with company_context(company):
        assert TimelineEvent.objects.filter(kind="referee_opened", reference=reference).count() == 1
    client.get(url(token))
    with company_context(company):  # opened once, however often the page is read
        assert TimelineEvent.objects.filter(kind="referee_opened", reference=reference).count() == 1


def test_confirming_checks_the_details_then_leads_to_the_questions(client, company, setup):
    _, reference, token = setup
    bad = client.post(
        url(token, "confirm/"),
        {**IDENTITY, "job_title": "", "candidate_from": "2021-13", "candidate_to": "2020-01"},
    )
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "This field is required." in page and "for example 2021-06" in page
    assert 'action="./"' in page and 'href="../decline/"' in page  # relative to confirm/
    assert load(company, reference).confirmed_at is None
    backwards = client.post(
        url(token, "confirm/"), {**IDENTITY, "candidate_from": "2022-05", "candidate_to": "2021-01"}
    )
    assert backwards.status_code == 400 and "before the month you started" in backwards.content.decode()
    future = client.post(url(token, "confirm/"), {**IDENTITY, "candidate_from": "2999-01"})
    assert future.status_code == 400 and "This month is still to come" in future.content.decode()
    assert client.get(url(token, "answers/"))["Location"] == url(token)  # confirm first
    confirmed(client, token)
    fresh = load(company, reference)
    assert fresh.confirmed_at is not None and fresh.identity == IDENTITY
    # Back on step 1, the details are there to correct.
    home = client.get(url(token)).content.decode()
    assert 'value="Finance Director"' in home and "Continue to the questions" in home


def test_a_confirm_page_fetched_directly_goes_home(client, setup):
    _, _, token = setup
    assert client.get(url(token, "confirm/"))["Location"] == url(token)


# --- Step 2 --------------------------------------------------------------------------


def test_the_questionnaire_renders_every_question_type(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, questionnaire="builtin:people-manager")
    _, token = nominate(company, reference_request, REFEREES[0])
    confirmed(client, token)
    page = client.get(url(token, "answers/")).content.decode()
    questions = reference_request.questionnaire_version.questions
    assert {q["type"] for q in questions} >= {"text", "rating", "yes_no", "single", "multiple"}
    for question in questions:
        assert f'id="question-{question["id"]}"' in page
        kind = {"text": "textarea", "multiple": 'type="checkbox"'}.get(question["type"], 'type="radio"')
        assert f'name="q-{question["id"]}"' in page
        block = page.split(f'id="question-{question["id"]}"')[1].split("</li>")[0]
        assert kind in block, question["id"]
        if question.get("help"):
            assert question["help"] in block
        assert ("required" in block) is bool(question.get("required")) or "(optional)" in block
        if question["type"] == "rating":
            assert question["scale"]["low_label"] in block and question["scale"]["high_label"] in block
            # The end labels describe the first and the last button, and only those.
            qid, scale = question["id"], question["scale"]
            low, high = f"scale-low-{qid}", f"scale-high-{qid}"
            assert re.search(rf'<span class="scale-end muted" id="{low}">[^<]*{re.escape(scale["low_label"])}', block)
            assert re.search(rf'<span class="scale-end muted" id="{high}">[^<]*{re.escape(scale["high_label"])}', block)
            described = re.findall(r'id="(q-[^"]+)" value="[^"]*" aria-describedby="([^"]+)"', block)
            points = int(scale["max"]) - int(scale["min"])
            assert described == [(f"q-{qid}-0", low), (f"q-{qid}-{points}", high)]
    assert f"0</strong> of {len(questions)} answered" in page
    assert "vouch/vouch.js" in page and "<script>" not in page and "style=" not in page


def test_partial_answers_are_saved_and_shown_again(client, company, setup):
    _, reference, token = setup
    confirmed(client, token)
    saved = client.post(
        url(token, "answers/"), {"q-reliability": "4", "q-strengths": "Calm under pressure", "action": "save"}
    )
    assert saved.status_code == 302 and saved["Location"].endswith("answers/?saved=1")
    assert load(company, reference).answers == {"reliability": 4, "strengths": "Calm under pressure"}
    page = client.get(saved["Location"]).content.decode()
    assert "Saved." in page
    assert 'value="4" checked' in page and ">Calm under pressure</textarea>" in page
    assert "2</strong> of 8 answered" in page
    assert 'action="./"' in page and 'href="../"' in page and token not in page
    assert load(company, reference).status == ReferenceStatus.IN_PROGRESS


def test_invalid_answers_are_refused_and_the_valid_ones_kept(client, company, setup):
    _, reference, token = setup
    confirmed(client, token)
    client.post(url(token, "answers/"), {"q-quality": "3", "action": "save"})
    response = client.post(
        url(token, "answers/"),
        {"q-reliability": "9", "q-relationship": "Best friend", "q-strengths": "Thorough", "action": "save"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose a rating from 1 to 5." in page and "Choose one of the options." in page
    assert ">Thorough</textarea>" in page
    # What was valid is saved, what was saved before is still there, nothing invalid stored.
    assert load(company, reference).answers == {"quality": 3, "strengths": "Thorough"}


def test_an_overlong_answer_is_shown_back_not_lost(client, company, setup):
    _, reference, token = setup
    confirmed(client, token)
    long = "x" * 5001
    response = client.post(url(token, "answers/"), {"q-strengths": long, "q-quality": "2", "action": "save"})
    assert response.status_code == 400
    assert long in response.content.decode() and "under 5000 characters" in response.content.decode()
    assert load(company, reference).answers == {"quality": 2}


def test_unticking_every_box_clears_a_multiple_choice_answer(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, questionnaire="builtin:people-manager")
    reference, token = nominate(company, reference_request, REFEREES[0])
    confirmed(client, token)
    question = next(q for q in reference_request.questionnaire_version.questions if q["type"] == "multiple")
    name = f"q-{question['id']}"
    client.post(url(token, "answers/"), {name: question["choices"][:2], "shown-multiple": question["id"]})
    assert load(company, reference).answers == {question["id"]: question["choices"][:2]}
    client.post(url(token, "answers/"), {"shown-multiple": question["id"], "action": "save"})
    assert load(company, reference).answers == {}


def test_submitting_with_a_required_answer_missing_is_refused(client, company, setup):
    _, reference, token = setup
    confirmed(client, token)
    partial = {key: value for key, value in FULL.items() if key != "q-rehire"}
    response = client.post(url(token, "answers/"), {**partial, "action": "submit"})
    assert response.status_code == 400
    page = response.content.decode()
    block = page.split('id="question-rehire"')[1].split("</li>")[0]
    assert "This question needs an answer." in block
    fresh = load(company, reference)
    assert fresh.status == ReferenceStatus.IN_PROGRESS and fresh.submitted_at is None
    assert fresh.answers["strengths"] == "Careful with numbers"  # the valid answers are kept
    assert len(mail.outbox) == 2  # the two invitations; no "reference completed" mail


def test_after_submitting_the_link_shows_only_thanks_and_changes_nothing(client, company, setup):
    reference_request, reference, token = setup
    confirmed(client, token)
    done = client.post(url(token, "answers/"), {**FULL, "q-anything_else": "Zanzibar-7 marker", "action": "submit"})
    assert done.status_code == 302 and done["Location"] == url(token)
    thanks = client.get(url(token))
    assert thanks.status_code == 200
    page = thanks.content.decode()
    assert "Thank you" in page and "Casey Candidate" in page
    assert "Zanzibar-7" not in page and "Careful with numbers" not in page and "<form" not in page
    assert token not in page
    before = load(company, reference)
    assert before.status == ReferenceStatus.COMPLETED
    assert client.get(url(token, "answers/"))["Location"] == url(token)
    assert client.get(url(token, "decline/"))["Location"] == url(token)
    attempts = [
        ("answers/", {**FULL, "q-strengths": "Changed", "action": "save"}, {}),
        ("answers/", {**FULL, "q-strengths": "Changed", "action": "submit"}, {}),
        ("confirm/", {**IDENTITY, "job_title": "Changed"}, {}),
        ("decline/", {"reason": "Changed my mind"}, {}),
    ]
    for page_name, data, headers in attempts:
        refused = client.post(url(token, page_name), data, headers=headers)
        assert refused.status_code == 409, page_name
        assert "Nothing was changed" in refused.content.decode()
    autosave = client.post(url(token, "answers/"), {"q-strengths": "Changed"}, headers={"X-Vouch-Autosave": "1"})
    assert autosave.status_code == 409 and "already submitted" in autosave.json()["error"]
    after = load(company, reference)
    assert after.answers == before.answers and after.answers["strengths"] == "Careful with numbers"
    assert after.identity == IDENTITY and after.status == ReferenceStatus.COMPLETED and after.decline_reason == ""


def test_declining_with_a_reason(client, company, members, setup):
    _, reference, token = setup
    form = client.get(url(token, "decline/"))
    assert form.status_code == 200 and "Why are you declining?" in form.content.decode()
    empty = client.post(url(token, "decline/"), {"reason": "   "})
    assert empty.status_code == 400 and "Say briefly why you are declining." in empty.content.decode()
    assert 'action="./"' in empty.content.decode() and 'href="../"' in empty.content.decode()
    assert load(company, reference).status != ReferenceStatus.DECLINED
    mail.outbox.clear()
    declined = client.post(url(token, "decline/"), {"reason": "I only met them once."})
    assert declined.status_code == 302 and declined["Location"] == url(token)
    fresh = load(company, reference)
    assert fresh.status == ReferenceStatus.DECLINED and fresh.decline_reason == "I only met them once."
    # The candidate is told (with a link to nominate someone else), and the request's recruiter.
    told = {message.to[0]: message.subject for message in mail.outbox}
    assert len(mail.outbox) == 2 and "casey@example.org" in told
    assert "A referee declined" in told[members[Role.RECRUITER].user.email]
    page = client.get(url(token)).content.decode()
    assert "You declined" in page and "<form" not in page
    assert client.post(url(token, "confirm/"), IDENTITY).status_code == 409
    assert client.post(url(token, "answers/"), {**FULL, "action": "save"}).status_code == 409
    assert load(company, reference).answers is None


def test_a_closed_request_shows_a_closed_page_and_refuses_changes(client, company, members, setup):
    reference_request, reference, token = setup
    with company_context(company):
        request_flows.cancel_request(reference_request, actor=members[Role.RECRUITER].user)
    # Cancelling revokes the link: the page of a link no longer in use.
    response = client.get(url(token))
    assert response.status_code == 410 and "This link is no longer in use" in response.content.decode()


def test_a_reference_whose_request_closed_shows_why_and_refuses_changes(client, company, setup):
    """Closing a request revokes its open links; should one still be reached (its
    request closed under it), the page says why and every change is refused."""
    reference_request, reference, token = setup
    confirmed(client, token)
    with company_context(company):
        ReferenceRequest.objects.filter(pk=reference_request.pk).update(status=RequestStatus.COMPLETED)
    page = client.get(url(token))
    assert page.status_code == 200
    assert "This reference is closed" in page.content.decode() and "no longer needed" in page.content.decode()
    assert client.get(url(token, "answers/"))["Location"] == url(token)
    refused = client.post(url(token, "answers/"), {**FULL, "action": "save"})
    assert refused.status_code == 409 and "Nothing was changed" in refused.content.decode()
    assert load(company, reference).answers is None


# --- Referees apart ------------------------------------------------------------------


def test_a_referee_never_sees_another_referees_answers(client, company, setup):
    reference_request, first, first_token = setup
    second, second_token = nominate(company, reference_request, REFEREES[1])
    confirmed(client, first_token)
    confirmed(client, second_token)
    client.post(url(first_token, "answers/"), {"q-strengths": "Marmalade-Alpha", "action": "save"})
    client.post(url(second_token, "answers/"), {"q-strengths": "Quokka-Bravo", "action": "save"})
    for token, own, other in (
        (first_token, "Marmalade-Alpha", "Quokka-Bravo"),
        (second_token, "Quokka-Bravo", "Marmalade-Alpha"),
    ):
        for page in ("", "answers/", "decline/"):
            text = client.get(url(token, page), follow=True).content.decode()
            assert other not in text, (token[:4], page)
        assert own in client.get(url(token, "answers/")).content.decode()
    client.post(url(first_token, "answers/"), {**FULL, "q-strengths": "Marmalade-Alpha", "action": "submit"})
    for page in ("", "answers/"):
        assert "Marmalade-Alpha" not in client.get(url(second_token, page), follow=True).content.decode()
    # And the first referee's thank-you page shows neither.
    text = client.get(url(first_token)).content.decode()
    assert "Marmalade-Alpha" not in text and "Quokka-Bravo" not in text


def test_a_replaced_referees_link_is_no_longer_in_use(client, company, setup):
    reference_request, reference, token = setup
    client.post(url(token, "decline/"), {"reason": "Not the right person."})
    nominate(company, reference_request, REFEREES[2], replacing=load(company, reference))
    ended = "This link is no longer in use"
    for page in ("", "answers/", "decline/"):
        response = client.get(url(token, page))
        assert response.status_code == 410 and ended in response.content.decode()
        assert "Casey" not in response.content.decode()
    assert client.post(url(token, "decline/"), {"reason": "again"}).status_code == 410


def test_a_post_without_the_csrf_token_is_refused(csrf_client, company, setup):
    _, reference, token = setup
    page = csrf_client.get(url(token)).content.decode()  # sets the CSRF cookie, as in a browser
    secret = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    origin = {"Origin": "https://testserver"}
    refused = csrf_client.post(url(token, "confirm/"), IDENTITY, headers=origin)
    assert refused.status_code == 403
    assert load(company, reference).confirmed_at is None
    forged = csrf_client.post(url(token, "confirm/"), {**IDENTITY, "csrfmiddlewaretoken": "x" * 32}, headers=origin)
    assert forged.status_code == 403
    accepted = csrf_client.post(url(token, "confirm/"), {**IDENTITY, "csrfmiddlewaretoken": secret}, headers=origin)
    assert accepted.status_code == 302  # control: the same POST with the page's token goes through
    assert load(company, reference).confirmed_at is not None


def test_each_action_is_recorded_for_the_fraud_checks(client, company, setup):
    _, reference, token = setup
    client.get(url(token), REMOTE_ADDR="198.51.100.20")
    confirmed(client, token)
    for value in ("3", "4", "5"):
        client.post(url(token, "answers/"), {"q-quality": value}, headers=AUTOSAVE)
    client.post(url(token, "answers/"), {**FULL, "action": "submit"})
    with company_context(company):
        actions = list(Touch.objects.filter(reference_id=reference.pk).values_list("action", flat=True))
    assert actions == ["opened", "confirmed", "saved", "submitted"]


def test_saves_are_recorded_for_the_fraud_checks_at_most_once_a_minute(client, company, setup):
    """Autosave fires every few seconds: "saved" is recorded once per minute per
    reference, even when the saves come from different addresses."""
    _, reference, token = setup
    confirmed(client, token)
    if time.time() % 60 > 50:  # keep the first two saves within one clock minute
        time.sleep(61 - time.time() % 60)
    for address in ("198.51.100.1", "203.0.113.9"):
        client.post(url(token, "answers/"), {"q-quality": "4"}, headers=AUTOSAVE, REMOTE_ADDR=address)

    def saved_touches() -> int:
        with company_context(company):
            return Touch.objects.filter(reference_id=reference.pk, action="saved").count()

    assert saved_touches() == 1
    with company_context(company):  # the last save was two minutes ago
        Reference.objects.filter(pk=reference.pk).update(saved_at=timezone.now() - timedelta(minutes=2))
    client.post(url(token, "answers/"), {"q-quality": "5"}, headers=AUTOSAVE, REMOTE_ADDR="203.0.113.9")
    assert saved_touches() == 2


# --- Autosave and speed --------------------------------------------------------------

AUTOSAVE = {"X-Vouch-Autosave": "1"}


def test_autosave_answers_small_and_quick(client, company, setup):
    _, reference, token = setup
    confirmed(client, token)
    client.get(url(token, "answers/"))  # warm
    started = time.perf_counter()
    response = client.post(url(token, "answers/"), {"q-quality": "5", "q-dates": "Since 2021"}, headers=AUTOSAVE)
    elapsed = time.perf_counter() - started
    assert response.status_code == 204 and response.content == b""
    assert elapsed < 0.5, elapsed
    assert load(company, reference).answers == {"quality": 5, "dates": "Since 2021"}
    bad = client.post(url(token, "answers/"), {"q-quality": "0", "q-dates": "2021 on"}, headers=AUTOSAVE)
    assert bad.status_code == 400 and bad.json() == {"errors": {"quality": "Choose a rating from 1 to 5."}}
    assert load(company, reference).answers == {"quality": 5, "dates": "2021 on"}
    # Autosave never submits, whatever the form's button says.
    client.post(url(token, "answers/"), {**FULL, "action": "submit"}, headers=AUTOSAVE)
    assert load(company, reference).status == ReferenceStatus.IN_PROGRESS


def test_autosave_before_confirming_is_refused(client, company, setup):
    _, reference, token = setup
    response = client.post(url(token, "answers/"), {"q-quality": "5"}, headers=AUTOSAVE)
    assert response.status_code == 409 and "Confirm your details first." in response.json()["error"]
    assert load(company, reference).answers is None


def all_queries(company, client, method: str, path: str, data=None, headers=None) -> tuple[int, int]:
    """(status, queries on every database, the company's own included) of one request."""
    with company_context(company) as context:  # keeps the company's connection registered
        watched = [CaptureQueriesContext(connection) for connection in connections.all()]
        watched.append(CaptureQueriesContext(connections[context.alias]))
        for capture in watched:
            capture.__enter__()
        try:
            if method == "GET":
                response = client.get(path)
            else:
                response = client.post(path, data, headers=headers or {})
        finally:
            for capture in watched:
                capture.__exit__(None, None, None)
    return response.status_code, sum(len(capture) for capture in watched)


def test_the_answers_page_and_a_save_take_few_queries(client, company, setup):
    _, reference, token = setup
    confirmed(client, token)
    client.post(url(token, "answers/"), {"q-quality": "5"}, headers=AUTOSAVE)  # every connection open
    status, page_queries = all_queries(company, client, "GET", url(token, "answers/"))
    assert status == 200
    # Control database: the throttle (a cache read, on SQLite only) and the link; company:
    # the reference with its request, candidate and questionnaire, in one query, and the
    # company's branding row (the header's logo and colour). None per question, and no
    # write (a link's use is written at most once a minute).
    assert page_queries <= 4, page_queries
    saves = []
    for note in ("More delegation", "Even more delegation"):
        status, count = all_queries(
            company, client, "POST", url(token, "answers/"), {**FULL, "q-develop": note}, AUTOSAVE
        )
        assert status == 204
        saves.append(count)
    # The page's reads, then one compare-and-set UPDATE (no re-read under a lock). The
    # smaller of two: a save in a new minute also records a "saved" touch.
    assert min(saves) <= page_queries + 1, saves
