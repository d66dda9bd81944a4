"""The candidate's pages under their private link (issue #5, step 2), driven through
the real pages with the link taken from the email the candidate was sent."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.references.workflow import REFEREES, last_token, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.references.models import Reference, ReferenceRequest
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import ReferenceStatus, RequestStatus, WorkflowSettings
from vouch.references.requests import flows as request_flows

pytestmark = pytest.mark.django_db

NEUTRAL = "This link is not valid. It may have expired or been replaced. Ask the person who sent it for a new one."
# Written by referees, for the company only: must never reach a candidate page.
SECRET_ANSWER = "Zebrafinch-answer-4471"
SECRET_REASON = "Ocelot-reason-9902"
SECRET_TITLE = "Quokka-title-3318"


def home(token: str) -> str:
    return f"/c/{token}/"


def form_of(referee: dict) -> dict:
    return dict(referee)


@pytest.fixture
def recruiter(members):
    return members[Role.RECRUITER].user


@pytest.fixture
def opened(company, recruiter):
    """A fresh request: (request, candidate token)."""
    return make_request(company, recruiter)


def references_of(company, reference_request) -> list[Reference]:
    """The request's referees, opened (decrypted) while the company's keys are at hand."""
    with company_context(company):
        found = list(Reference.objects.filter(request_id=reference_request.pk).order_by("nominated_at", "id"))
        for reference in found:
            reference.name  # noqa: B018 - reading one value opens the row
        return found


def reload(company, reference_request) -> ReferenceRequest:
    with company_context(company):
        found = ReferenceRequest.objects.select_related("candidate").get(pk=reference_request.pk)
        found.role, found.candidate.name  # noqa: B018 - opens both rows
        return found


def nominate_through_page(client, token: str, referee: dict):
    return client.post(home(token) + "nominate/", form_of(referee))


def answers_with(reference_request, text: str) -> dict:
    """Answers to every question of the request's questionnaire; free text says ``text``."""
    result = {}
    for question in reference_request.questionnaire_version.questions:
        kind = question["type"]
        result[question["id"]] = {
            "text": text,
            "rating": question.get("scale", {}).get("max"),
            "yes_no": "yes",
            "single": (question.get("choices") or [""])[0],
            "multiple": (question.get("choices") or [""])[:1],
        }[kind]
    return result


def complete(company, reference: Reference, text: str = "Reliable.") -> None:
    with company_context(company):
        reference = Reference.objects.select_related("request__questionnaire_version").get(pk=reference.pk)
        referee_flows.referee_opened(reference)
        referee_flows.confirm_referee(
            reference,
            job_title=SECRET_TITLE,
            organisation="Acme Widgets",
            candidate_from="2021-01",
            candidate_to="2024-06",
            candidate_title="Finance Manager",
        )
        assert referee_flows.submit_answers(reference, answers_with(reference.request, text)) == {}


def decline(company, reference: Reference, reason: str = "I did not work with them.") -> None:
    with company_context(company):
        referee_flows.decline(Reference.objects.get(pk=reference.pk), reason)


def make_overdue(company, reference: Reference) -> None:
    with company_context(company):
        days = WorkflowSettings.current().replace_after_days
        Reference.objects.filter(pk=reference.pk).update(nominated_at=timezone.now() - timedelta(days=days, hours=1))


# --- The home page and the candidate's details ---------------------------------------


def test_home_shows_the_request_and_confirming_details_saves_them(client, company, opened):
    reference_request, token = opened
    response = client.get(home(token))
    assert response.status_code == 200
    text = response.content.decode()
    for expected in (
        "Acme Hiring",
        "Head of Finance",
        "A manager from the last two years",
        reference_request.deadline.strftime("%-d %B %Y"),
        "Confirm your details",
        'value="Casey Candidate"',
        'value="casey@example.org"',
        "0 of 2</strong> references received",
        "You have not nominated anyone yet.",
        "Nominate referee",
    ):
        assert expected in text, expected
    assert token not in text  # links on the page are relative: the token stays in the address
    assert response["Referrer-Policy"] == "same-origin" and "no-store" in response["Cache-Control"]
    done = reload(company, reference_request)
    assert done.candidate_opened_at is not None and done.candidate_confirmed_at is None
    with company_context(company):
        assert done.timeline.filter(kind="candidate_opened").count() == 1

    response = client.post(
        home(token) + "details/", {"name": "Casey Q. Candidate", "email": "casey@example.org", "phone": "07700 900999"}
    )
    assert response.status_code == 302
    assert response["Location"] == home(token) + "?done=confirmed#done"
    page = client.get(response["Location"]).content.decode()
    assert "Thank you: your details are confirmed." in page
    assert "Your details are confirmed." in page and "Change your details" in page
    done = reload(company, reference_request)
    assert done.candidate_confirmed_at is not None
    assert (done.candidate.name, done.candidate.phone) == ("Casey Q. Candidate", "07700 900999")


def test_bad_details_are_400_with_a_message_and_nothing_saved(client, company, opened):
    reference_request, token = opened
    response = client.post(home(token) + "details/", {"name": "Casey Typed", "email": "not-an-email", "phone": ""})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Enter a valid email address." in text
    assert 'value="Casey Typed"' in text  # what was typed is kept
    response = client.post(home(token) + "details/", {"name": "  ", "email": "casey@example.org", "phone": "call me"})
    assert response.status_code == 400
    assert "Enter a phone number" in response.content.decode()
    done = reload(company, reference_request)
    assert done.candidate_confirmed_at is None and done.candidate.name == "Casey Candidate"


def test_the_form_addresses_redirect_home_on_get(client, opened):
    _request, token = opened
    for page in ("details/", "nominate/"):
        response = client.get(home(token) + page)
        assert response.status_code == 302 and response["Location"] == home(token)


def test_the_done_flag_shows_only_known_sentences(client, opened):
    _request, token = opened
    text = client.get(home(token) + "?done=%3Cscript%3Ealert(1)%3C/script%3E").content.decode()
    assert "<script>alert" not in text and "alert(1)" not in text
    assert 'role="status"' not in text


# --- Nominating ----------------------------------------------------------------------


def test_nominating_two_referees_sends_their_links_and_a_third_is_refused(client, company, opened):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        response = nominate_through_page(client, token, referee)
        assert response.status_code == 302, response.content.decode()
        assert response["Location"] == home(token) + "?done=nominated#done"
    first, second = references_of(company, reference_request)
    # Each referee was emailed their own link, which opens their own reference.
    assert links.resolve(last_token(REFEREES[0]["email"], "r"), Purpose.REFEREE).subject_id == first.pk
    assert links.resolve(last_token(REFEREES[1]["email"], "r"), Purpose.REFEREE).subject_id == second.pk
    assert (first.name, first.relationship, first.worked_from, first.worked_to) == (
        "Rita Referee",
        "manager",
        "2021-01",
        "2024-06",
    )
    assert reload(company, reference_request).status == RequestStatus.AWAITING_REFEREES

    page = client.get(home(token) + "?done=nominated").content.decode()
    assert "Referee added: we have emailed them their private link." in page
    for expected in (
        "Rita Referee",
        "Manager",
        "Acme Widgets",
        "Pat Peer",
        "Peer",
        "Globex",
        "January 2021 – June 2024",
    ):
        assert expected in page, expected
    assert page.count(">Invited</span>") == 2
    assert "Nominate referee" not in page and "You have nominated everyone Acme Hiring asked for." in page
    assert "you can replace them" in page  # when an unanswered referee becomes replaceable

    sent = len(mail.outbox)
    response = nominate_through_page(client, token, REFEREES[2])
    assert response.status_code == 400
    text = response.content.decode()
    assert "You have nominated all the referees this request asks for." in text
    assert 'value="Morgan Manager"' in text
    assert len(references_of(company, reference_request)) == 2 and len(mail.outbox) == sent


def test_a_still_current_referee_is_nominated_with_an_open_end(client, company, opened):
    reference_request, token = opened
    response = nominate_through_page(client, token, {**REFEREES[0], "worked_to": "", "phone": ""})
    assert response.status_code == 302
    (reference,) = references_of(company, reference_request)
    assert (reference.worked_to, reference.phone) == ("", "")
    page = client.get(home(token)).content.decode()
    assert "January 2021 – now" in page and "You can nominate 1 more referee." in page


NEXT_YEAR = str(timezone.now().year + 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "rita-at-acme"}, "Enter a valid email address."),
        ({"email": "casey@example.org"}, "A referee cannot be you"),
        ({"worked_from": "2021-13"}, "Enter a month as YYYY-MM"),
        ({"worked_from": "June 2021"}, "Enter a month as YYYY-MM"),
        ({"worked_from": "\u0662\u0660\u0662\u0661-\u0660\u0661"}, "Enter a month as YYYY-MM"),  # Arabic-Indic digits
        ({"worked_from": "1899-01"}, "Enter a month from 1950 on."),
        ({"worked_from": ""}, "Enter the month you started."),
        ({"worked_to": f"{NEXT_YEAR}-01"}, "This month is still to come"),
        ({"worked_from": "2024-06", "worked_to": "2021-01"}, "This is before the month you started working together."),
        ({"relationship": ""}, "Choose how you worked together."),
        ({"relationship": "mother"}, "Choose manager, peer, direct report or client."),
        ({"organisation": "   "}, "Enter the organisation where you worked together."),
        ({"name": ""}, "Enter their full name."),
        ({"phone": "ring ring"}, "Enter a phone number"),
        ({"name": "x" * 201}, "Ensure this value has at most 200 characters"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_invalid_nominations_are_400_with_a_message_and_keep_what_was_typed(client, company, opened, changes, message):
    reference_request, token = opened
    response = nominate_through_page(client, token, {**REFEREES[0], **changes})
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text, text
    assert 'value="Acme Widgets"' in text or "organisation" in changes
    assert not references_of(company, reference_request)


def test_the_same_referee_cannot_be_nominated_twice(client, company, opened):
    reference_request, token = opened
    assert nominate_through_page(client, token, REFEREES[0]).status_code == 302
    response = nominate_through_page(client, token, {**REFEREES[1], "email": REFEREES[0]["email"].upper()})
    assert response.status_code == 400
    assert "You have already nominated someone with this email address." in response.content.decode()
    assert len(references_of(company, reference_request)) == 1


# --- Replacing -----------------------------------------------------------------------


def test_a_declined_referee_is_replaced(client, company, opened):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        nominate_through_page(client, token, referee)
    first, second = references_of(company, reference_request)
    decline(company, second)
    page = client.get(home(token)).content.decode()
    assert ">Declined</span>" in page
    assert f'href="./replace/{second.pk}/"' in page and f"replace/{first.pk}/" not in page
    assert "1 more referee" not in page  # a declined referee's place is taken by replacing them

    replace_url = home(token) + f"replace/{second.pk}/"
    form = client.get(replace_url)
    assert form.status_code == 200
    assert "Replace Pat Peer" in form.content.decode() and "Nominate instead" in form.content.decode()
    response = client.post(replace_url, form_of(REFEREES[2]))
    assert response.status_code == 302 and response["Location"] == home(token) + "?done=replaced#done"
    with company_context(company):
        old = Reference.objects.get(pk=second.pk)
        new = Reference.objects.get(pk=old.replaced_by_id)
        assert (old.status, new.status, new.name) == (
            ReferenceStatus.REPLACED,
            ReferenceStatus.INVITED,
            "Morgan Manager",
        )
        kinds = list(reference_request.timeline.values_list("kind", flat=True))
    assert "referee_replaced" in kinds
    assert links.resolve(last_token(REFEREES[2]["email"], "r"), Purpose.REFEREE).subject_id == new.pk
    page = client.get(response["Location"]).content.decode()
    assert "Referee replaced: we have emailed the new referee their private link." in page
    assert ">Replaced</span>" in page and "In their place: Morgan Manager." in page
    # Once replaced, the same referee cannot be replaced again.
    assert client.post(replace_url, form_of({**REFEREES[2], "email": "other@initech.example"})).status_code == 409
    assert len(references_of(company, reference_request)) == 3


def test_a_declined_referee_whose_place_was_filled_cannot_also_be_replaced(client, company, opened):
    """Nominating afresh fills the declined referee's place; replacing them as well
    would ask more referees than the request wants."""
    reference_request, token = opened
    for referee in REFEREES[:2]:
        nominate_through_page(client, token, referee)
    _first, second = references_of(company, reference_request)
    decline(company, second)
    page = client.get(home(token)).content.decode()
    assert "choose <strong>Replace</strong> beside their name" in page
    assert nominate_through_page(client, token, REFEREES[2]).status_code == 302  # a second tab, say
    page = client.get(home(token)).content.decode()
    assert "replace/" not in page
    refused = client.post(home(token) + f"replace/{second.pk}/", form_of({**REFEREES[2], "email": "x@initech.example"}))
    assert refused.status_code == 409
    active = [r for r in references_of(company, reference_request) if r.status == ReferenceStatus.INVITED]
    assert len(active) == 2


def test_an_overdue_referee_is_replaced_and_their_link_withdrawn(client, company, opened):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        nominate_through_page(client, token, referee)
    first, second = references_of(company, reference_request)
    first_link = last_token(REFEREES[0]["email"], "r")
    make_overdue(company, first)
    page = client.get(home(token)).content.decode()
    assert f'href="./replace/{first.pk}/"' in page and f"replace/{second.pk}/" not in page
    response = client.post(home(token) + f"replace/{first.pk}/", form_of(REFEREES[2]))
    assert response.status_code == 302
    with company_context(company):
        assert Reference.objects.get(pk=first.pk).status == ReferenceStatus.REPLACED
    assert links.resolve(first_link, Purpose.REFEREE) is None
    assert reload(company, reference_request).status == RequestStatus.AWAITING_REFEREES


def test_a_completed_or_on_time_referee_cannot_be_replaced(client, company, opened):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        nominate_through_page(client, token, referee)
    done, on_time = references_of(company, reference_request)
    complete(company, done)
    page = client.get(home(token)).content.decode()
    assert "replace/" not in page and ">Completed</span>" in page and "1 of 2</strong>" in page
    for reference in (done, on_time):
        url = home(token) + f"replace/{reference.pk}/"
        refused = client.get(url)
        assert refused.status_code == 409
        assert "cannot be replaced" in refused.content.decode() and "<form" not in refused.content.decode()
        assert client.post(url, form_of(REFEREES[2])).status_code == 409
    statuses = [reference.status for reference in references_of(company, reference_request)]
    assert statuses == [ReferenceStatus.COMPLETED, ReferenceStatus.INVITED]


def test_another_requests_referee_cannot_be_replaced_through_this_link(client, company, recruiter, opened):
    reference_request, token = opened
    other, other_token = make_request(company, recruiter, name="Olive Other", email="olive@example.org")
    theirs, _ = nominate(company, other, REFEREES[0])
    decline(company, theirs)
    for url in (home(token) + f"replace/{theirs.pk}/", home(token) + f"replace/{uuid.uuid4()}/"):
        for response in (client.get(url), client.post(url, form_of(REFEREES[2]))):
            assert response.status_code == 404
            text = response.content.decode()
            assert NEUTRAL in text and "Rita" not in text and "Olive" not in text
    with company_context(company):
        assert Reference.objects.get(pk=theirs.pk).status == ReferenceStatus.DECLINED
        assert Reference.objects.count() == 1
    # Control: the same referee is replaceable through its own candidate's link.
    assert client.get(home(other_token) + f"replace/{theirs.pk}/").status_code == 200


# --- What the candidate never sees ---------------------------------------------------


def test_candidate_pages_never_show_answers_decline_reasons_or_identity(client, company, opened):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        nominate_through_page(client, token, referee)
    answered, declined = references_of(company, reference_request)
    with company_context(company):
        referee_flows.referee_opened(answered)
        referee_flows.save_answers(
            answered, answers_with(reference_request, SECRET_ANSWER)
        )  # progress, not yet submitted
    decline(company, declined, f"{SECRET_REASON}: we never overlapped.")
    with company_context(company):  # control: the secrets are there to be leaked
        assert SECRET_ANSWER in str(Reference.objects.get(pk=answered.pk).answers)
        assert SECRET_REASON in Reference.objects.get(pk=declined.pk).decline_reason

    def pages() -> list:
        return [
            client.get(home(token)),
            client.get(home(token) + f"replace/{declined.pk}/"),
            client.get(home(token) + f"replace/{answered.pk}/"),
            client.post(home(token) + "details/", {"name": "", "email": "x"}),
            client.post(home(token) + "nominate/", {"name": "Someone"}),
            client.post(home(token) + f"replace/{declined.pk}/", {"name": "Someone"}),
        ]

    seen = pages()
    assert [response.status_code for response in seen] == [200, 200, 409, 400, 400, 400]
    complete(company, answered, SECRET_ANSWER)
    client.post(home(token) + f"replace/{declined.pk}/", form_of(REFEREES[2]))
    (replacement,) = [r for r in references_of(company, reference_request) if r.name == "Morgan Manager"]
    complete(company, replacement, SECRET_ANSWER)
    assert reload(company, reference_request).status == RequestStatus.COMPLETED
    seen += [client.get(home(token)), client.post(home(token) + "nominate/", form_of(REFEREES[2]))]
    for response in seen:
        text = response.content.decode()
        for secret in (SECRET_ANSWER, SECRET_REASON, SECRET_TITLE):
            assert secret not in text, (response.request["PATH_INFO"], secret)
        assert "Reliable" not in text
    # The statuses are shown all the same.
    assert ">Declined</span>" in seen[0].content.decode() and ">Completed</span>" in seen[-2].content.decode()


# --- Closed and cancelled requests ---------------------------------------------------


def test_a_completed_request_shows_the_closed_page_and_refuses_changes(client, company, opened):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        nominate_through_page(client, token, referee)
    first, second = references_of(company, reference_request)
    complete(company, first)
    decline(company, second)
    client.post(home(token) + f"replace/{second.pk}/", form_of(REFEREES[2]))
    complete(company, references_of(company, reference_request)[-1])
    assert reload(company, reference_request).status == RequestStatus.COMPLETED

    page = client.get(home(token))
    text = page.content.decode()
    assert page.status_code == 200
    assert "All your references are in" in text and "2 of 2</strong>" in text
    assert "<form" not in text and "replace/" not in text and "Nominate referee" not in text
    before = [(r.pk, r.status) for r in references_of(company, reference_request)]
    for url, data in (
        ("details/", {"name": "Changed Name", "email": "casey@example.org", "phone": ""}),
        ("nominate/", form_of({**REFEREES[0], "email": "new@acme-widgets.example"})),
        (f"replace/{second.pk}/", form_of({**REFEREES[0], "email": "new@acme-widgets.example"})),
    ):
        refused = client.post(home(token) + url, data)
        assert refused.status_code == 409, url
        assert "All your references are in" in refused.content.decode() and "<form" not in refused.content.decode()
    assert [(r.pk, r.status) for r in references_of(company, reference_request)] == before
    assert reload(company, reference_request).candidate.name == "Casey Candidate"


def test_an_expired_request_shows_the_closed_page(client, company, opened):
    reference_request, token = opened
    with company_context(company):  # the deadline passed; the expiry task has not run yet
        ReferenceRequest.objects.filter(pk=reference_request.pk).update(
            status=RequestStatus.EXPIRED, closed_at=timezone.now()
        )
    text = client.get(home(token)).content.decode()
    assert "This reference check has closed" in text and "<form" not in text
    assert client.post(home(token) + "nominate/", form_of(REFEREES[0])).status_code == 409
    assert not references_of(company, reference_request)
    # Once expired by the workflow, the link is withdrawn: no longer in use.
    with company_context(company):
        ReferenceRequest.objects.filter(pk=reference_request.pk).update(
            status=RequestStatus.AWAITING_CANDIDATE, closed_at=None
        )
        assert request_flows.expire_request(
            reload(company, reference_request), now=reference_request.deadline + timedelta(seconds=1)
        )
    withdrawn = client.get(home(token))
    assert withdrawn.status_code == 410 and "This link is no longer in use" in withdrawn.content.decode()


def test_a_cancelled_requests_link_is_no_longer_in_use(client, company, recruiter, opened):
    reference_request, token = opened
    nominate_through_page(client, token, REFEREES[0])
    (reference,) = references_of(company, reference_request)
    with company_context(company):
        request_flows.cancel_request(reload(company, reference_request), actor=recruiter, reason="Role filled.")
    for response in (
        client.get(home(token)),
        client.post(home(token) + "details/", {"name": "A", "email": "a@example.org"}),
        client.post(home(token) + "nominate/", form_of(REFEREES[1])),
        client.get(home(token) + f"replace/{reference.pk}/"),
    ):
        assert response.status_code == 410 and "This link is no longer in use" in response.content.decode()
        assert "Head of Finance" not in response.content.decode()
    assert len(references_of(company, reference_request)) == 1


# --- On a phone, under the CSP -------------------------------------------------------


def test_pages_are_made_for_a_phone_and_keep_to_the_csp(client, company, opened):
    reference_request, token = opened
    nominate_through_page(client, token, REFEREES[0])
    (reference,) = references_of(company, reference_request)
    decline(company, reference)
    pages = [
        client.get(home(token)),
        client.get(home(token) + f"replace/{reference.pk}/"),
        client.post(home(token) + "nominate/", {"name": "x"}),
    ]
    for response in pages:
        text = response.content.decode()
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
        assert 'class="link-page"' in text
        assert " style=" not in text and "<style" not in text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), "inline script"
        assert 'type="email"' in text and 'type="tel"' in text
        # Months are two labelled selects in a fieldset (vouch.references.months), not <input type=month>.
        assert 'type="month"' not in text
        assert re.search(
            r'<fieldset[^>]*>\s*<legend>Worked together from:</legend>.*?<div class="month-select">', text, re.S
        )
        assert '<label for="referee-worked_from_0">Month</label><select name="worked_from_month"' in text
        # Two forms share the home page: every element id is unique, so each label names its own input.
        ids = re.findall(r'\sid="([^"]+)"', text)
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    css = (
        __import__("pathlib").Path(__file__).resolve().parents[2] / "src/vouch/web/static/vouch/vouch.css"
    ).read_text()
    # Inputs never exceed the screen; link pages have their narrow layout.
    assert (
        "input[type=tel], input[type=date]" in css
        and ".month-select { display:flex" in css
        and ".link-page main" in css
    )
    assert "@media (max-width: 640px)" in css


def test_a_form_posted_without_its_csrf_token_is_refused(csrf_client, company, opened):
    reference_request, token = opened
    response = csrf_client.post(home(token) + "nominate/", form_of(REFEREES[0]))
    assert response.status_code == 403
    assert not references_of(company, reference_request)


# --- Fraud signals -------------------------------------------------------------------


def test_every_candidate_action_is_recorded_and_nominations_are_checked(client, company, opened):
    from vouch.references.request_models import Flag, Touch

    reference_request, token = opened
    client.get(home(token))
    details = {"name": "Casey Candidate", "email": "casey@example.org", "phone": "07700 900456"}
    client.post(home(token) + "details/", details)
    # A referee with the candidate's own mobile number: the checks run after nominating.
    nominate_through_page(client, token, {**REFEREES[0], "phone": "07700 900456"})
    (first,) = references_of(company, reference_request)
    decline(company, first)
    client.post(home(token) + f"replace/{first.pk}/", form_of(REFEREES[1]))
    with company_context(company):
        touches = list(Touch.objects.filter(request_id=reference_request.pk, actor="candidate").order_by("at", "id"))
        kinds = set(Flag.objects.filter(request_id=reference_request.pk).values_list("kind", flat=True))
        replacement = Reference.objects.get(pk=Reference.objects.get(pk=first.pk).replaced_by_id)
    assert [touch.action for touch in touches] == ["opened", "confirmed", "nominated", "replaced"]
    assert touches[2].reference_id == first.pk and touches[3].reference_id == replacement.pk
    assert all(touch.ip_index and touch.device_index for touch in touches)
    assert "phone_candidate" in kinds
    # The candidate is never told about flags.
    assert "flag" not in client.get(home(token)).content.decode().lower()


def test_a_candidate_who_takes_a_referees_phone_number_is_flagged(client, company, opened):
    from vouch.references.request_models import Flag

    reference_request, token = opened
    nominate_through_page(client, token, REFEREES[0])
    with company_context(company):
        assert not Flag.objects.filter(request_id=reference_request.pk).exists()
    details = {"name": "Casey Candidate", "email": "casey@example.org", "phone": REFEREES[0]["phone"]}
    assert client.post(home(token) + "details/", details).status_code == 302
    with company_context(company):
        assert "phone_candidate" in set(
            Flag.objects.filter(request_id=reference_request.pk).values_list("kind", flat=True)
        )
