"""The issue's flood of fraud signals, triaged in a real browser: a candidate and four
referees behind one office address (every context of a test shares one), the request
page's risk summary and groups, the office network set on the workflow settings page
(the summary drops from High to Review), and all of one referee's signals reviewed at
once, with a confirmation and the reviewed items left in place.

The page's height is measured before the office is known, after, and after the review
(printed, and kept under a bound); with VOUCH_E2E_SCREENSHOTS set, every page loaded and
the request page at each step are saved there to be looked at."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import flows, reference_flows
from tests.e2e.support import PHONE, unique_email

pytestmark = pytest.mark.e2e

COMPANY = "Fabrikam Recruiting"
CANDIDATE = "Siobhán O'Neill"
ROLE = "Finance Manager"
PEOPLE = [
    ("Ann O'Brien", "ann", "manager"),
    ("Bob Smith", "bob", "peer"),
    ("Chloé Dupré", "chloe", "peer"),
    ("Dmitri Иванов", "dmitri", "report"),
]
# px at 1280 wide. The issue measured about 6,800 for the whole page before grouping; the
# timeline below the signals still lists each raised flag, so the page bound is looser.
MAX_HEIGHT = 5800
MAX_SIGNALS_HEIGHT = 2600


def _height(page) -> int:
    return page.evaluate("() => document.documentElement.scrollHeight")


def _signals_height(page) -> int:
    return page.evaluate("() => Math.round(document.getElementById('flags').getBoundingClientRect().height)")


def test_office_flood_triaged_in_one_action(contexts, outbox, tmp_path):
    shots = Path(os.environ.get("VOUCH_E2E_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    recruiter = contexts.new_page(viewport={"width": 1280, "height": 900})
    owner_email = unique_email("owner")
    flows.sign_up_company(recruiter, name="Rory Recruiter", email=owner_email, company=COMPANY, region="EU")
    flows.confirm_email(recruiter, outbox, owner_email)
    candidate_email = unique_email("siobhan")
    request_url = reference_flows.create_request(
        recruiter,
        name=CANDIDATE,
        email=candidate_email,
        role=ROLE,
        referees=4,
        guidance="Managers and colleagues from your current job",
        deadline=date.today() + timedelta(days=14),
    )

    # The candidate nominates four colleagues; each opens their link from the same office.
    candidate = contexts.new_page(**PHONE)
    candidate.goto(outbox.wait_for(candidate_email, "nominate referees").link(r"https://\S+/c/[A-Za-z0-9_-]+/"))
    reference_flows.confirm_candidate_details(candidate, name=CANDIDATE, email=candidate_email)
    people = [
        reference_flows.referee(name, prefix, relationship, "Contoso", "2021-01", "2024-06")
        for name, prefix, relationship in PEOPLE
    ]
    for person in people:
        reference_flows.nominate(candidate, person)
    for person in people:
        referee = contexts.new_page(viewport={"width": 1280, "height": 900})
        referee.goto(reference_flows.referee_link(outbox, person.email))
        expect(referee.get_by_role("heading", level=1)).to_have_text(f"Reference for {CANDIDATE}")

    # The recruiter: one summary on top, one item per referee and one for the four together.
    recruiter.goto(request_url)
    flags = recruiter.get_by_role("region", name=re.compile("^Fraud signals"))
    expect(flags).to_contain_text("14 open")
    expect(recruiter.locator("#risk-top")).to_contain_text("High risk")
    expect(recruiter.locator("#risk-summary")).to_contain_text(
        "Four referees opened their links from the candidate's network; "
        "four referees used the same internet address as one another."
    )
    expect(flags.locator("li.flag-item")).to_have_count(5)
    # One comment box per group, folded until the recruiter opens it (and one per referee for all at once).
    expect(flags.locator("textarea[name=comment]")).to_have_count(5 + 4)
    expect(flags.locator("summary", has_text=re.compile("^Review these"))).to_have_count(5)
    high, high_signals = _height(recruiter), _signals_height(recruiter)
    recruiter.screenshot(path=str(shots / "signals-1-flood.png"), full_page=True, caret="initial")
    # Every raw signal is one click away.
    flags.locator("summary", has_text="Show all 6 signals").click()
    expect(flags.locator("li[id^=flag-]").filter(has_text="Same internet address as another referee")).to_have_count(6)

    # An owner knows the office network: the shared-network signals weigh less.
    recruiter.goto("/company/workflow/")
    recruiter.get_by_label("Known office networks").fill("198.18.0.0/24\n198.18.0.0/33")
    recruiter.get_by_role("button", name="Save settings").click()
    expect(recruiter.get_by_text("“198.18.0.0/33” is not a network")).to_be_visible()
    office_network = ".".join(contexts.address.split(".")[:3]) + ".0/24"  # this test's people's address
    recruiter.get_by_label("Known office networks").fill(office_network)
    recruiter.get_by_role("button", name="Save settings").click()
    expect(recruiter.get_by_role("status")).to_contain_text("Workflow settings saved.")
    recruiter.goto(request_url)
    expect(recruiter.locator("#risk-top")).to_contain_text("Review")
    expect(recruiter.locator("#risk-summary")).to_contain_text(
        "Four referees opened their links from the candidate's network (a known office network)"
    )
    expect(flags.locator(".lowered").first).to_contain_text("Lowered from High")
    office, office_signals = _height(recruiter), _signals_height(recruiter)
    recruiter.screenshot(path=str(shots / "signals-2-office-known.png"), full_page=True, caret="initial")

    # All of Ann's signals reviewed at once; confirmation, and nothing moves.
    order = flags.locator("li.flag-item").evaluate_all("items => items.map(item => item.id)")
    ann = flags.get_by_role("region", name=re.compile("^Ann O'Brien"))
    ann.locator("summary", has_text="Review all 5 open signals on Ann O'Brien at once").click()
    ann.get_by_label("What did you check, and what did you find?").last.fill(
        "Called Ann on Contoso's switchboard: she works there with Siobhán."
    )
    ann.get_by_role("button", name="Mark all 5 as reviewed").click()
    expect(flags.get_by_role("status")).to_have_text("Marked as reviewed: every signal on Ann O'Brien (5 signals).")
    expect(flags).to_contain_text("9 open")
    assert flags.locator("li.flag-item").evaluate_all("items => items.map(item => item.id)") == order
    ann = flags.get_by_role("region", name=re.compile("^Ann O'Brien"))
    expect(ann).to_contain_text("No concern")
    expect(ann.locator("li.flag-item.reviewed")).to_have_count(1)
    expect(ann).to_contain_text("Called Ann on Contoso's switchboard")
    reviewed, reviewed_signals = _height(recruiter), _signals_height(recruiter)
    recruiter.screenshot(path=str(shots / "signals-3-ann-reviewed.png"), full_page=True, caret="initial")
    # Without JavaScript's swap, the page comes back at Ann's section: a reload shows the same.
    recruiter.reload()
    expect(recruiter.locator("#timeline")).to_contain_text("5 flags reviewed: Called Ann")

    print(
        f"\nrequest page height: flood {high}px, office known {office}px, after review {reviewed}px; "
        f"signals section: {high_signals}px, {office_signals}px, {reviewed_signals}px"
    )
    assert max(high, office, reviewed) < MAX_HEIGHT
    assert max(high_signals, office_signals, reviewed_signals) < MAX_SIGNALS_HEIGHT
