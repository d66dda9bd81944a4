"""Support access in a real browser against the running server (P15): an operator with
two-factor asks a company with an awkward name for access, its owner approves from the
emailed link, and the operator sees the company's dashboard under the support banner;
the owner sees the page views in the security events. Screenshots of the three pages go
to VOUCH_E2E_SCREENSHOTS (or the test's own directory)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e.support import PASSPHRASE, unique_email
from tests.totp import current_code

pytestmark = pytest.mark.e2e

COMPANY = "O'Brien & Smith Zoë Ångström"
REASON = "Ticket 4411: the dashboard shows no requests since Monday"


def make_operator(live_vouch, email: str) -> str:
    """An operator with a password and an authenticator app, made below the pages (as
    `vouch operator create` and the 2FA page would); returns the TOTP secret."""
    code = (
        "import json\n"
        "from allauth.account.models import EmailAddress\n"
        "from allauth.mfa.totp.internal import auth\n"
        "from vouch.accounts.models import User\n"
        f"u = User.objects.create_operator({email!r}, full_name='Olive Operator')\n"
        f"u.set_password({PASSPHRASE!r}); u.save()\n"
        f"EmailAddress.objects.create(user=u, email={email!r}, primary=True, verified=True)\n"
        "s = auth.generate_totp_secret(); auth.TOTP.activate(u, s)\n"
        "print(json.dumps({'secret': s}))"
    )
    result = live_vouch.vouch("manage", "shell", "-v", "0", "-c", code)
    return json.loads(result.stdout.strip().splitlines()[-1])["secret"]


def test_an_operator_asks_an_owner_approves_and_the_banner_shows(contexts, outbox, live_vouch, tmp_path):
    shots = Path(os.environ.get("VOUCH_E2E_SCREENSHOTS") or tmp_path)
    owner_email, operator_email = unique_email("owner"), unique_email("ops")
    company = f"{COMPANY} {owner_email[6:14]}"  # unique on a shared server

    owner = contexts.new_page(viewport={"width": 1280, "height": 900})
    flows.sign_up_company(owner, name="Siobhán O'Brien", email=owner_email, company=company)
    flows.confirm_email(owner, outbox, owner_email)
    flows.expect_dashboard(owner, company, "EU", "Owner")

    secret = make_operator(live_vouch, operator_email)
    ops = contexts.new_page(viewport={"width": 1280, "height": 900})
    flows.sign_in(ops, operator_email)
    expect(ops.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    ops.get_by_placeholder("Code").fill(current_code(secret))
    ops.get_by_role("main").get_by_role("button", name="Sign In", exact=True).click()
    expect(ops).to_have_url(re.compile(r"/operator/$"))
    ops.get_by_role("link", name="Support access").click()
    expect(ops.get_by_role("heading", name="Ask a company for access")).to_be_visible()
    ops.get_by_label("Company").select_option(label=f"{company} (EU)")
    ops.get_by_label("Reason").fill(REASON)
    ops.get_by_label("For how long (hours)").fill("8")
    ops.screenshot(path=str(shots / "support-1-operator-request.png"), full_page=True)
    ops.get_by_role("button", name="Ask the owners").click()
    expect(ops.get_by_role("status")).to_contain_text(f"Asked the owners of {company}")
    expect(ops.locator("#support-grants")).to_contain_text("Waiting for an owner")

    mail = outbox.wait_for(owner_email, "support access")
    assert company in mail.subject and REASON in mail.body
    owner.goto(mail.link(r"https://\S+/company/support/\S+/"))
    expect(owner.get_by_role("heading", name=f"Support access to {company}")).to_be_visible()
    expect(owner.locator("#support-request")).to_contain_text(REASON)
    expect(owner.get_by_label("Read-only")).to_be_checked()
    owner.get_by_label("For how long (hours)").fill("2")
    owner.screenshot(path=str(shots / "support-2-owner-approval.png"), full_page=True)
    owner.get_by_role("button", name="Approve").click()
    expect(owner.get_by_role("status")).to_contain_text("Support access approved")
    expect(owner.locator("#support-grants")).to_contain_text("Approved")

    ops.goto("/operator/support/")
    ops.get_by_role("button", name="Open").click()
    expect(ops).to_have_url(re.compile(r"/dashboard/$"))
    banner = ops.locator("#support-banner")
    expect(banner).to_contain_text(f"Support access for {company}, read-only, until")
    expect(banner).to_contain_text("granted by Siobhán O'Brien")
    expect(ops.locator(".companybar")).to_contain_text("as support, read-only")
    ops.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(ops.locator("#support-banner")).to_be_visible()
    ops.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    ops.screenshot(path=str(shots / "support-3-company-page-with-banner.png"), full_page=True)

    owner.goto("/security/events/?action=support_page_viewed")
    expect(owner.get_by_role("table", name="Security events")).to_contain_text("route:requests")
    expect(owner.get_by_role("table", name="Security events")).to_contain_text(operator_email)

    ops.locator("#support-banner").get_by_role("button", name="Leave").click()
    expect(ops).to_have_url(re.compile(r"/operator/support/$"))
    ops.goto("/dashboard/")
    expect(ops.locator("#support-banner")).to_have_count(0)
