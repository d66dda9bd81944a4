"""A recruiter's day in a real browser against `vouch serve`, from signing up to the PDF,
each person in a browser of their own, judged by what the pages show and what Vouch
emails:

the owner brands the company (logo, colour) → builds a questionnaire without a page
reload → asks for references for two candidates, one due tomorrow → the candidate, on a
phone, sees the company's brand and nominates two referees → one answers the company's
questionnaire, the other declines → the recruiter is emailed of both → the dashboard
counts the requests and lists what needs action → the request's fraud signals (every
browser here shares one address, the candidate's) are triaged in one action → a prefix
search finds both candidates as the recruiter types → the branded, tagged PDF is read
back.

Screenshots of the dashboard, the request page and the candidate's branded page are
saved for review (tests/e2e/support.save_screenshot: build/screenshots, or
VOUCH_E2E_SCREENSHOTS)."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from email.utils import getaddresses

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e import flows, questionnaire_flows, reference_flows
from tests.e2e.questionnaire_flows import Question
from tests.e2e.support import PHONE, save_screenshot, unique_email

pytestmark = pytest.mark.e2e

COMPANY = "Smith & Jones Recruiting"
CANDIDATE = "Marta O'Brien"
OTHER = "Marek Nowak"
ROLE = "Senior Analyst"
ACCENT, ACCENT_RGB = "#8a1538", "rgb(138, 21, 56)"
QUESTIONNAIRE = "Finance roles"
QUESTIONS = [
    Question("text", "What are their main strengths?"),
    Question("rating", "How reliable were they?", scale=("5", "Not at all", "Completely")),
    Question("yes_no", "Would you hire them again?"),
]


def answer_finance_roles(page, strengths: str) -> None:
    """The referee answers the company's own questionnaire and submits it."""
    page.get_by_role("textbox", name=QUESTIONS[0].prompt).fill(strengths)
    reference_flows.question(page, QUESTIONS[1].prompt).get_by_role("radio", name="5", exact=True).check()
    reference_flows.question(page, QUESTIONS[2].prompt).get_by_label("Yes", exact=True).check()
    expect(page.locator("#autosave-status")).to_contain_text("Saved at")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Submit reference").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")


def test_a_recruiters_day(contexts, outbox):
    recruiter = contexts.new_page(viewport={"width": 1280, "height": 900})
    owner_email = unique_email("day")
    flows.sign_up_company(recruiter, name="Rory Recruiter", email=owner_email, company=COMPANY, region="EU")
    flows.confirm_email(recruiter, outbox, owner_email)

    # --- the company's brand ---------------------------------------------------------------
    flows.set_branding(recruiter, logo=flows.logo_png(colour=(138, 21, 56)), accent=ACCENT)

    # --- the company's own questionnaire, built in place ----------------------------------
    questionnaire_flows.build_questionnaire(recruiter, QUESTIONNAIRE, QUESTIONS)
    assert questionnaire_flows.preview_order(recruiter) == [(q.prompt, q.kind) for q in QUESTIONS]

    # --- two requests, one due tomorrow ---------------------------------------------------
    candidate_email = unique_email("marta")
    request_url = reference_flows.create_request(
        recruiter,
        name=CANDIDATE,
        email=candidate_email,
        role=ROLE,
        referees=2,
        guidance="A manager from the last two years",
        deadline=date.today() + timedelta(days=14),
        questionnaire=QUESTIONNAIRE,
    )
    reference_flows.create_request(
        recruiter,
        name=OTHER,
        email=unique_email("marek"),
        role="Analyst",
        referees=1,
        guidance="",
        deadline=date.today() + timedelta(days=1),
    )

    # --- the candidate, on a phone, nominates two referees --------------------------------
    invitation = outbox.wait_for(candidate_email, "nominate referees")
    assert getaddresses([invitation.sender])[0][0] == f"{COMPANY} via Vouch"
    candidate = contexts.new_page(**PHONE)
    candidate.goto(invitation.link(r"https://\S+/c/[A-Za-z0-9_-]+/"))
    header = candidate.locator("header.topbar")
    expect(header).to_contain_text(COMPANY)
    expect(header.locator("img.brand-logo")).to_be_visible()
    expect(candidate.get_by_role("button", name="Confirm my details")).to_have_css("background-color", ACCENT_RGB)
    save_screenshot(candidate, "recruiters-day-candidate")
    reference_flows.confirm_candidate_details(candidate, name=CANDIDATE, email=candidate_email)
    ann = reference_flows.referee("Ann Åkesson", "ann", "manager", "Contoso", "2021-01", "2024-06")
    bob = reference_flows.referee("Bob Smith", "bob", "peer", "Contoso", "2022-02", "2024-06")
    reference_flows.nominate(candidate, ann)
    reference_flows.nominate(candidate, bob)

    # --- one answers the company's questionnaire, the other declines ----------------------
    referee = contexts.new_page(viewport={"width": 1280, "height": 900})
    referee.goto(reference_flows.referee_link(outbox, ann.email))
    reference_flows.confirm_identity(referee, candidate=CANDIDATE)
    for question in QUESTIONS:
        expect(referee.get_by_role("main")).to_contain_text(question.prompt)
    answer_finance_roles(referee, ann.strengths)
    decliner = contexts.new_page(**PHONE)
    decliner.goto(reference_flows.referee_link(outbox, bob.email))
    reference_flows.decline(decliner, "We only worked together for a few weeks.")

    # --- the recruiter is told ------------------------------------------------------------
    completed = outbox.wait_for(owner_email, "has given a reference for")
    assert ann.name in completed.body and CANDIDATE in completed.body
    declined = outbox.wait_for(owner_email, "A referee declined")
    assert f"{bob.name} declined" in declined.body and "a few weeks" not in declined.body
    # Several High signals (one shared address), one mail: the rest wait on the request's page.
    assert len(outbox.to(owner_email, "High fraud signal")) == 1

    # --- the dashboard: counts and what needs action --------------------------------------
    recruiter.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(recruiter.get_by_role("heading", name="All requests: 2")).to_be_visible()
    counts = recruiter.locator("#desk-counts")
    # Marta's request waits on her again: one referee in, one declined, one more to nominate.
    expect(counts.get_by_role("link", name=re.compile(r"^2 Awaiting candidate"))).to_be_visible()
    actions = recruiter.locator("#desk-actions")
    expect(actions.locator("#action-high_flag + ul")).to_contain_text(CANDIDATE)
    expect(actions.locator("#action-referee + ul")).to_contain_text(CANDIDATE)
    expect(actions.locator("#action-deadline + ul")).to_contain_text(OTHER)
    expect(recruiter.locator("#desk-recent")).to_contain_text(f"{bob.name} declined.")
    save_screenshot(recruiter, "recruiters-day-dashboard")

    # --- the flagged request, triaged in one action ---------------------------------------
    actions.locator("#action-high_flag + ul").get_by_role("link", name=re.compile(re.escape(CANDIDATE))).click()
    expect(recruiter).to_have_url(request_url)
    expect(recruiter.locator("#risk-top")).to_contain_text("High risk")
    flags = recruiter.get_by_role("region", name=re.compile("^Fraud signals"))
    section = flags.get_by_role("region", name=re.compile("^" + re.escape(ann.name)))
    section.locator("summary", has_text=re.compile(r"^Review all \d+ open signals on")).click()
    section.get_by_label("What did you check, and what did you find?").last.fill(
        "Called Ann on Contoso's switchboard: she managed Marta there."
    )
    section.get_by_role("button", name=re.compile(r"^Mark all \d+ as reviewed$")).click()
    expect(flags.get_by_role("status")).to_contain_text(f"Marked as reviewed: every signal on {ann.name}")
    expect(flags.get_by_role("region", name=re.compile("^" + re.escape(ann.name)))).to_contain_text("No concern")
    save_screenshot(recruiter, "recruiters-day-request")

    # --- a prefix search as the recruiter types -------------------------------------------
    recruiter.get_by_role("navigation", name="Main").get_by_role("link", name="Candidates").click()
    results = flows.type_search(
        recruiter, contexts.accessibility, "Mar", box="Name, email or phone number:", results="candidate-results"
    )
    expect(results.get_by_role("link", name=CANDIDATE)).to_be_visible()
    expect(results.get_by_role("link", name=OTHER)).to_be_visible()

    # --- the report's PDF -----------------------------------------------------------------
    recruiter.goto(request_url)
    with recruiter.expect_download() as download_info:
        recruiter.get_by_role("link", name="Download PDF").click()
    data = open(download_info.value.path(), "rb").read()  # noqa: PTH123, SIM115 - Playwright's temporary file
    reader = PdfReader(io.BytesIO(data))
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    assert CANDIDATE in text and ann.name in text and ann.strengths in text
    assert COMPANY in text
    # Tagged for screen readers (PDF/UA), with the company's logo drawn on it.
    assert "/StructTreeRoot" in reader.trailer["/Root"] and reader.trailer["/Root"]["/MarkInfo"]["/Marked"]
    assert any(page.images for page in reader.pages)
