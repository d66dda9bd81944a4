"""A security key in a real browser: Chromium's virtual authenticator (CDP WebAuthn
domain) registers a key on the 2FA page, then signs in with it. The page scripts are
allauth's static files; the fixtures fail the test on any CSP violation or script error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e.support import PASSPHRASE, unique_email

pytestmark = pytest.mark.e2e


def add_virtual_authenticator(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_register_security_key_and_sign_in_with_it(page, outbox, live_vouch):
    email = unique_email("keyowner")
    company = "Keyring Staffing"
    flows.sign_up_company(page, name="Kim Key", email=email, company=company, region="EU")
    flows.confirm_email(page, outbox, email)
    flows.expect_dashboard(page, company, "EU", "Owner")
    add_virtual_authenticator(page)

    page.goto("/accounts/2fa/webauthn/add/")
    # Adding a key is a 2FA change: allauth asks for the password again first.
    expect(page.get_by_role("heading", name="Confirm Access")).to_be_visible()
    flows.password_field(page).fill(PASSPHRASE)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Add Security Key")).to_be_visible()
    page.get_by_role("button", name="Add").click()
    # allauth shows the new recovery codes (or the key list) once the key is saved.
    expect(page).not_to_have_url(re.compile(r"/webauthn/add/$"))
    page.goto("/accounts/2fa/webauthn/")
    assert "Something went wrong" not in page.content(), live_vouch.log()[-4000:]
    expect(page.get_by_role("main")).to_contain_text("Master key")

    flows.sign_out(page)
    flows.sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    page.get_by_role("button", name="Use a security key").click()
    flows.expect_dashboard(page, company, "EU", "Owner")
