"""Branding in a real browser (issue 20): an owner refuses a colour too light to read,
sets a logo and an accent colour through the pages, and the candidate's page shows the
company's name and logo in its header and the colour on its buttons, under the app's
Content Security Policy (a violation fails the test) and with axe-core run on every
state. The candidate's email comes from "<Company> via Vouch". A screenshot of the
branded page is saved where the browser tests save theirs (VOUCH_E2E_SCREENSHOTS, or the
test's own directory). Removing the logo takes it off the page."""

from __future__ import annotations

import os
from datetime import date, timedelta
from email.utils import getaddresses
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import flows, reference_flows
from tests.e2e.support import PHONE, unique_email

pytestmark = pytest.mark.e2e

COMPANY = "Brightwater & Daughters"
ACCENT = "#0b5394"
ACCENT_RGB = "rgb(11, 83, 148)"


def test_an_owner_brands_the_candidates_page(contexts, outbox, tmp_path):
    shots = Path(os.environ.get("VOUCH_E2E_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    owner = contexts.new_page(viewport={"width": 1280, "height": 900})
    owner_email = unique_email("brand-owner")
    flows.sign_up_company(owner, name="Bea Brightwater", email=owner_email, company=COMPANY, region="EU")
    flows.confirm_email(owner, outbox, owner_email)

    # A colour too light to read is refused, with the reason and a darker one to try.
    owner.goto("/company/branding/")
    owner.get_by_label("Accent colour:", exact=True).fill("#ffcc00")
    owner.get_by_role("button", name="Save branding").click()
    expect(owner.locator(".error-summary")).to_contain_text("Nothing was saved")
    expect(owner.get_by_text("#ffcc00 is too light")).to_be_visible()
    flows.set_branding(owner, logo=flows.logo_png(), accent=ACCENT)

    candidate_email = unique_email("brand-cand")
    reference_flows.create_request(
        owner,
        name="Cora Candidate",
        email=candidate_email,
        role="Operations Lead",
        referees=1,
        guidance="Your last manager",
        deadline=date.today() + timedelta(days=14),
    )
    mail = outbox.wait_for(candidate_email, "nominate referees")
    assert getaddresses([mail.sender])[0][0] == f"{COMPANY} via Vouch"

    candidate = contexts.new_page(**PHONE)
    candidate.goto(mail.link(r"https://\S+/c/[A-Za-z0-9_-]+/"))
    header = candidate.locator("header.topbar")
    expect(header).to_contain_text(COMPANY)
    expect(header).to_contain_text("via Vouch")
    logo = header.locator("img.brand-logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 240
    assert candidate.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--brand')") == ACCENT
    confirm = candidate.get_by_role("button", name="Confirm my details")
    expect(confirm).to_have_css("background-color", ACCENT_RGB)
    candidate.screenshot(path=str(shots / "branding-candidate-page.png"), full_page=True, caret="initial")

    # The logo goes; the name and colour stay.
    flows.set_branding(owner, remove_logo=True)
    candidate.reload()
    expect(candidate.locator("header.topbar")).to_contain_text(COMPANY)
    expect(candidate.locator("header.topbar img")).to_have_count(0)
    expect(candidate.get_by_role("button", name="Confirm my details")).to_have_css("background-color", ACCENT_RGB)
