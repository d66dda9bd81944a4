"""The report of a request: the page, its summaries and checks, and the PDF stored
encrypted and rendered again only when the report changes."""

from __future__ import annotations

import io
import uuid

import pytest
from django.test import TestCase
from django.urls import reverse
from pypdf import PdfReader

from tests.accounts.helpers import fast_company, fast_member
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.references.fraud import flows as fraud_flows
from vouch.references.referees import flows as referee_flows
from vouch.references.reports import data as report_data
from vouch.references.reports import pdf as report_pdf
from vouch.references.request_models import Flag, ReferenceRequest, ReportFile, Severity
from vouch.references.requests import flows as request_flows

pytestmark = pytest.mark.django_db

RITA_IDENTITY = {
    "job_title": "Finance Director",
    "organisation": "Acme Widgets Ltd",  # the same organisation as nominated, with its legal form
    "candidate_from": "2021-02",
    "candidate_to": "2024-06",
    "candidate_title": "Finance Manager",
}
# Pat names another organisation and a start 14 months before the nomination's.
PAT_IDENTITY = {
    "job_title": "Senior Accountant",
    "organisation": "Initech",
    "candidate_from": "2018-01",
    "candidate_to": "2021-01",
    "candidate_title": "Accountant",
}
RITA_ANSWERS = {
    "relationship": "I managed them",
    "dates": "2021 to 2024, Finance Manager",
    "reliability": 5,
    "quality": 4,
    "strengths": "Meticulous with the month-end close.",
    "rehire": "yes",
}
PAT_ANSWERS = {
    "relationship": "Peer or colleague",
    "dates": "2019 to 2021",
    "reliability": 3,
    "quality": 2,
    "strengths": "Calm under audit pressure.",
    "rehire": "no",
}


def answered(company, reference, identity, answers):
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        referee_flows.referee_opened(reference)
        referee_flows.confirm_referee(reference, **identity)
        assert referee_flows.submit_answers(reference, answers) == {}


def full_request(company, actor):
    """A completed request: two references in, one flag reviewed, one open."""
    reference_request, _ = make_request(company, actor)
    rita, _ = nominate(company, reference_request, REFEREES[0])
    pat, _ = nominate(company, reference_request, REFEREES[1])
    answered(company, rita, RITA_IDENTITY, RITA_ANSWERS)
    answered(company, pat, PAT_IDENTITY, PAT_ANSWERS)
    with company_context(company):
        Flag.objects.create(
            request=reference_request,
            reference=pat,
            kind="shared_network",
            key=f"shared_network:{pat.pk}",
            severity=Severity.HIGH,
            explanation="Pat Peer answered from the candidate's network.",
        )
        reviewed = Flag.objects.create(
            request=reference_request,
            reference=rita,
            kind="fast_answers",
            key=f"fast_answers:{rita.pk}",
            severity=Severity.LOW,
            explanation="Rita Referee answered in under two minutes.",
        )
        fraud_flows.review_flag(reviewed, actor=actor, comment="Called Rita: she had drafted answers beforehand.")
        reference_request = ReferenceRequest.objects.get(pk=reference_request.pk)
    return reference_request, rita, pat


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def download(client, reference_request):
    response = client.get(reverse("request_report_pdf", args=[reference_request.pk]))
    return response, b"".join(response.streaming_content) if response.status_code == 200 else b""


# --- the data ---------------------------------------------------------------------------


def test_summaries_give_each_score_and_the_mean_lowest_and_highest(company, members):
    reference_request, _, _ = full_request(company, members[Role.RECRUITER].user)
    with company_context(company):
        summaries = {item["id"]: item for item in report_data.build_report(reference_request)["summaries"]}
    reliability = summaries["reliability"]
    assert [(s["referee"], s["score"]) for s in reliability["scores"]] == [("Rita Referee", 5), ("Pat Peer", 3)]
    assert (reliability["mean"], reliability["min"], reliability["max"], reliability["count"]) == (4, 3, 5, 2)
    quality = summaries["quality"]
    assert (quality["mean"], quality["min"], quality["max"]) == (3, 2, 4)
    assert (summaries["rehire"]["yes"], summaries["rehire"]["no"]) == (1, 1)
    counts = {c["choice"]: c["count"] for c in summaries["relationship"]["choices"]}
    assert counts["I managed them"] == 1 and counts["Peer or colleague"] == 1 and counts["Other"] == 0
    # Free text is shown per referee, never summarised.
    assert "strengths" not in summaries


def test_a_mean_that_is_not_whole_is_kept_to_two_places():
    questions = [{"id": "q", "type": "rating", "prompt": "?", "scale": {"min": 1, "max": 5}}]
    [item] = report_data.summaries(questions, [("A", {"q": 5}), ("B", {"q": 4}), ("C", {"q": 4}), ("D", {})])
    assert (item["mean"], item["min"], item["max"], item["count"]) == (4.33, 4, 5, 3)


@pytest.mark.parametrize(
    ("nominated", "confirmed", "mismatch"),
    [("2021-01", "2021-04", False), ("2021-01", "2021-05", True), ("2021-01", "2020-09", True), ("2021-01", "", False)],
)
def test_dates_differing_by_more_than_three_months_are_a_mismatch(nominated, confirmed, mismatch):
    apart = report_data._months_apart(nominated, confirmed, present=None)
    assert (apart is not None and apart > report_data.DATE_TOLERANCE_MONTHS) is mismatch


def test_organisations_are_compared_without_case_punctuation_or_legal_form():
    same = report_data.normalise_organisation
    assert same("Acme Widgets") == same("ACME WIDGETS LTD.") == same("Acme Widgets, Limited")
    assert same("Acme Widgets") != same("Initech")


# --- the page ---------------------------------------------------------------------------


def test_the_report_page_shows_answers_summaries_checks_flags_and_timeline(client, company, members):
    reference_request, rita, pat = full_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("request_report", args=[reference_request.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    page = response.content.decode()
    assert "Casey Candidate" in page and "Head of Finance" in page
    # Answers, per referee.
    assert "Meticulous with the month-end close." in page and "Calm under audit pressure." in page
    assert "5 out of 5" in page and "2 out of 5" in page
    # Summaries with their numbers.
    summary = page.split('id="summary-reliability"')[1].split("</div>")[0]
    assert '<span class="summary-mean">4</span>' in summary
    assert '<span class="summary-min">3</span>' in summary and '<span class="summary-max">5</span>' in summary
    rehire = page.split('id="summary-rehire"')[1].split("</div>")[0]
    assert '<strong class="summary-yes">1</strong>' in rehire and '<strong class="summary-no">1</strong>' in rehire
    # Pat's organisation and start date are highlighted; Rita's "Ltd" and one month are not.
    pat_card = page.split(f'id="referee-{pat.pk}"')[1].split("</article>")[0]
    rita_card = page.split(f'id="referee-{rita.pk}"')[1].split("</article>")[0]
    assert pat_card.count('class="mismatch"') == 2
    assert "Differs: The referee names a different organisation" in pat_card and "14 months apart" in pat_card
    assert 'class="mismatch"' not in rita_card
    assert "Senior Accountant" in pat_card and "Accountant" in pat_card
    # Flags with severity, explanation and review.
    assert "Pat Peer answered from the candidate&#x27;s network." in page
    assert "Not reviewed yet." in page
    assert "Called Rita: she had drafted answers beforehand." in page
    assert "High" in page and "Low" in page
    # The timeline.
    assert "The candidate nominated Rita Referee (manager)." in page
    assert "All references are in: the request is complete." in page


def test_declined_and_replaced_referees_are_shown_with_the_reason(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    first, _ = nominate(company, reference_request, REFEREES[0])
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        referee_flows.decline(first, "I only met them twice.")
    replacement, _ = nominate(company, reference_request, REFEREES[2], replacing=first)
    answered(company, replacement, {**RITA_IDENTITY, "organisation": "Initech"}, RITA_ANSWERS)
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("request_report", args=[reference_request.pk])).content.decode()
    # Completed first, the replaced one after, with why.
    assert page.index(f'id="referee-{replacement.pk}"') < page.index(f'id="referee-{first.pk}"')
    first_card = page.split(f'id="referee-{first.pk}"')[1].split("</article>")[0]
    assert "I only met them twice." in first_card
    assert "Declined, then replaced by Morgan Manager." in first_card


def test_a_request_with_no_references_yet_has_empty_states(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("request_report", args=[reference_request.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "The candidate has not nominated any referees yet." in page
    assert "No referee has submitted yet" in page
    assert "No fraud signals were raised." in page
    status, content = download(client, reference_request)
    assert status.status_code == 200
    assert "has not nominated any referees yet" in pdf_text(content)


def test_another_companys_request_is_a_404(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    other = fast_company("Other Hiring")
    outsider = fast_member(other, Role.OWNER)
    client.force_login(outsider.user)
    assert client.get(reverse("request_report", args=[reference_request.pk])).status_code == 404
    assert client.get(reverse("request_report_pdf", args=[reference_request.pk])).status_code == 404
    assert client.get(reverse("request_report", args=[uuid.uuid4()])).status_code == 404


def test_a_recruiter_limited_to_their_own_requests_cannot_open_anothers_report(client, company, members):
    reference_request, _ = make_request(company, members[Role.ADMIN].user)
    with company_context(company):
        from vouch.references.request_models import WorkflowSettings

        settings = WorkflowSettings.current()
        settings.recruiters_see_all = False
        settings.save()
    client.force_login(members[Role.RECRUITER].user)
    assert client.get(reverse("request_report", args=[reference_request.pk])).status_code == 404
    assert client.get(reverse("request_report_pdf", args=[reference_request.pk])).status_code == 404


# --- the PDF ----------------------------------------------------------------------------


def test_the_pdf_matches_the_page_and_is_stored_encrypted(client, company, members):
    reference_request, _, _ = full_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    response, content = download(client, reference_request)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "private, no-store"
    assert (
        response["Content-Disposition"] == f'attachment; filename="reference-report-{reference_request.pk.hex[:8]}.pdf"'
    )
    assert content.startswith(b"%PDF")
    text = pdf_text(content)
    for expected in (
        "Casey Candidate",
        "Meticulous with the month-end close.",
        "Calm under audit pressure.",
        "Pat Peer answered from the candidate's network.",
        "14 months apart",
        "Mean 4",
        "Page 1 of",  # from the bundled print stylesheet: it was loaded
    ):
        assert expected in text, expected
    with company_context(company):
        stored = ReportFile.objects.get(request=reference_request)
        assert stored.size == len(content)
        path = stored.file.storage.stored_path(stored.file.name)
        raw = path.read_bytes()
        entry = Entry.objects.get(action="report_downloaded")
        assert entry.details == {"request": str(reference_request.pk)} and "Casey" not in entry.summary
    assert not raw.startswith(b"%PDF")
    assert b"Casey" not in raw and b"Meticulous" not in raw


def test_an_unchanged_report_is_not_rendered_again_and_a_change_is(client, company, members, monkeypatch):
    reference_request, _, pat = full_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.RECRUITER].user)
    renders = []
    original = report_pdf.render_pdf
    monkeypatch.setattr(report_pdf, "render_pdf", lambda data: renders.append(1) or original(data))
    first_response, first = download(client, reference_request)
    with company_context(company):
        stored = ReportFile.objects.get(request=reference_request)
        first_name, first_fingerprint, first_time = stored.file.name, stored.fingerprint, stored.generated_at
        first_path = stored.file.storage.stored_path(first_name)
    second_response, second = download(client, reference_request)
    assert first_response.status_code == second_response.status_code == 200
    assert first == second and len(renders) == 1
    with company_context(company):
        again = ReportFile.objects.get(request=reference_request)
        assert (again.pk, again.file.name, again.generated_at) == (stored.pk, first_name, first_time)
        # A flag reviewed changes what the report shows.
        fraud_flows.review_flag(
            Flag.objects.get(reference=pat), actor=members[Role.RECRUITER].user, comment="Same office."
        )
    third_response, third = download(client, reference_request)
    assert third_response.status_code == 200 and len(renders) == 2
    assert "Same office." in pdf_text(third)
    with company_context(company):
        changed = ReportFile.objects.get(request=reference_request)
        assert changed.pk == stored.pk
        assert changed.file.name != first_name and changed.fingerprint != first_fingerprint
        assert changed.file.storage.exists(changed.file.name)
    assert not first_path.exists(), "the replaced PDF is removed from disk"


def test_the_pdf_renderer_fetches_nothing_but_its_stylesheet():
    fetcher = report_pdf.BundledOnlyFetcher()
    assert b".print" in fetcher.fetch(report_pdf.STYLESHEET_URL).read()
    for url in ("https://example.com/x.png", "file:///etc/passwd", "http://169.254.169.254/", "data:text/css,a{}"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_text_that_looks_like_html_is_printed_not_followed(company, members):
    """A referee's answer holding markup shows as text and makes no request."""
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    answers = {
        **RITA_ANSWERS,
        "strengths": '<img src="http://169.254.169.254/latest"> <link href="file:///etc/passwd">',
    }
    answered(company, reference, RITA_IDENTITY, answers)
    with company_context(company):
        text = pdf_text(report_pdf.generate_pdf(ReferenceRequest.objects.get(pk=reference_request.pk)))
    assert '<img src="http://169.254.169.254/latest">' in text.replace("\n", " ")


def test_five_referee_report_renders(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, referees_required=5)
    people = [
        {**REFEREES[0], "name": f"Referee {n}", "email": f"referee{n}@firm{n}.example", "phone": ""} for n in range(5)
    ]
    for person in people:
        reference, _ = nominate(company, reference_request, person)
        answered(company, reference, RITA_IDENTITY, RITA_ANSWERS)
    with company_context(company):
        content = report_pdf.generate_pdf(ReferenceRequest.objects.get(pk=reference_request.pk))
    text = pdf_text(content)
    assert all(f"Referee {n}" in text for n in range(5))


def test_deleting_a_request_removes_its_stored_pdf(company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = make_request(company, recruiter)
    with company_context(company):
        stored = report_pdf.report_file_for(reference_request)
        path = stored.file.storage.stored_path(stored.file.name)
        assert path.exists()
        request_flows.delete_request(reference_request, actor=recruiter)
        assert not ReportFile.objects.exists()
    assert not path.exists()


def test_renders_are_refused_cheaply_when_one_is_under_way_or_the_budget_is_spent(
    client, company, members, monkeypatch
):
    from django.core.cache import cache

    reference_request, _, pat = full_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    lock = f"vouch:report-render:{company.pk}:{reference_request.pk}"
    cache.add(lock, 1, 60)
    response, _ = download(client, reference_request)
    assert response.status_code == 429 and response["Retry-After"] == "5"
    assert b"being prepared" in response.content
    cache.delete(lock)
    monkeypatch.setattr(report_pdf, "RENDERS_PER_WINDOW", 1)
    assert download(client, reference_request)[0].status_code == 200
    # Unchanged: served from the stored file, whatever the budget.
    assert download(client, reference_request)[0].status_code == 200
    with company_context(company):
        fraud_flows.review_flag(Flag.objects.get(reference=pat), actor=members[Role.RECRUITER].user, comment="Checked.")
    response, _ = download(client, reference_request)
    assert response.status_code == 429 and b"try again in a few minutes" in response.content
    with company_context(company):
        assert Entry.objects.filter(action="report_downloaded").count() == 2
