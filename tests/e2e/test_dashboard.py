"""The recruiter's dashboard in a real browser against `vouch serve`, with data made
through the pages: two requests (one due tomorrow), a referee who declines (flagged: every
browser here shares the candidate's address). The dashboard counts them and lists what
needs action; the recruiter is emailed of
the decline; the request list marks both and exports them as CSV. Screenshots of the
dashboard and the list are saved when VOUCH_E2E_SCREENSHOTS names a directory."""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import flows, reference_flows
from tests.e2e.support import PHONE, unique_email

pytestmark = pytest.mark.e2e

SCREENSHOTS = os.environ.get("VOUCH_E2E_SCREENSHOTS")
COMPANY = "Smith & Jones Recruiting"
AWKWARD = "Siobhán O'Brien 山田"


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


def test_the_dashboard_counts_lists_actions_and_notifies(contexts, outbox):
    recruiter = contexts.new_page(viewport={"width": 1280, "height": 900})
    owner_email = unique_email("desk")
    flows.sign_up_company(recruiter, name="Rory Recruiter", email=owner_email, company=COMPANY, region="EU")
    flows.confirm_email(recruiter, outbox, owner_email)
    flows.expect_dashboard(recruiter, COMPANY, "EU", "Owner")
    expect(recruiter.locator("#desk-empty")).to_contain_text("No reference requests yet")
    shot(recruiter, "dashboard-empty")

    candidate_email = unique_email("siobhan")
    reference_flows.create_request(
        recruiter,
        name=AWKWARD,
        email=candidate_email,
        role="Chef de partie",
        referees=2,
        guidance="A head chef you worked for",
        deadline=date.today() + timedelta(days=14),
    )
    reference_flows.create_request(
        recruiter,
        name="Ana Lima",
        email=unique_email("ana"),
        role="Sous chef",
        referees=2,
        guidance="",
        deadline=date.today() + timedelta(days=1),
    )

    # The candidate nominates a referee, who declines.
    candidate = contexts.new_page(**PHONE)
    candidate.goto(outbox.wait_for(candidate_email, "nominate referees").link(r"https://\S+/c/[A-Za-z0-9_-]+/"))
    reference_flows.confirm_candidate_details(candidate, name=AWKWARD, email=candidate_email)
    pat = reference_flows.referee("Pat Peer", "pat", "peer", "Globex", "2019-03", "2021-01")
    reference_flows.nominate(candidate, pat)
    referee = contexts.new_page(**PHONE)
    referee.goto(reference_flows.referee_link(outbox, pat.email))
    reference_flows.decline(referee, "We only worked together for a few weeks.")

    # The recruiter is told, without the reason.
    notice = outbox.wait_for(owner_email, "declined")
    assert "Pat Peer declined" in notice.body and AWKWARD in notice.body and "a few weeks" not in notice.body

    recruiter.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(recruiter.get_by_role("heading", name="All requests: 2")).to_be_visible()
    counts = recruiter.locator("#desk-counts")
    expect(counts.get_by_role("link", name=re.compile(r"^2 Awaiting candidate"))).to_be_visible()
    actions = recruiter.locator("#desk-actions")
    # Every browser here shares one address, the candidate's: the referee is flagged High too.
    expect(actions.get_by_role("heading", level=2)).to_have_text("Needs your action (3)")
    expect(actions.locator("#action-high_flag + ul")).to_contain_text(AWKWARD)
    declined = actions.locator("#action-referee + ul")
    expect(declined).to_contain_text(AWKWARD)
    expect(actions.locator("#action-deadline + ul")).to_contain_text("Ana Lima")
    expect(recruiter.locator("#desk-recent")).to_contain_text("Pat Peer declined.")
    expect(recruiter.locator("#desk-turnaround")).to_contain_text("Last 30 days")
    shot(recruiter, "dashboard")

    # My requests: the owner asked for both.
    recruiter.get_by_role("link", name="My requests").click()
    expect(recruiter.get_by_role("heading", name="My requests: 2")).to_be_visible()

    # The request list marks both, says what is needed, and exports them.
    recruiter.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(recruiter.get_by_text("Action needed")).to_have_count(2)
    shot(recruiter, "request-list")
    recruiter.get_by_role("link", name=AWKWARD).click()
    expect(recruiter.locator("#status-line")).to_have_text(
        "0 of 2 references in, 1 declined: waiting for the candidate to nominate 2 more referees."
    )
    shot(recruiter, "request-page")
    recruiter.go_back()
    with recruiter.expect_download() as download:
        recruiter.get_by_role("link", name="Download these as CSV").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0][0] == "Candidate" and sorted(row[0] for row in rows[1:]) == ["Ana Lima", AWKWARD]
