"""An authenticator app in a real browser against the running server: TOTP set up on
the 2FA page, sign-in with a code and with a recovery code. Then someone with write
access to the control database copies the first owner's sealed TOTP secret into a
second owner's row: the second owner's sign-in is refused with a clear message (no
server error), and the failure is in the security log."""

from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e.support import unique_email
from tests.totp import current_code

pytestmark = pytest.mark.e2e

SCREENSHOTS = os.environ.get("VOUCH_E2E_SCREENSHOTS")  # a directory to keep the refused page in


def set_up_totp(page) -> tuple[str, list[str]]:
    """Activate an authenticator app; returns its secret and the recovery codes shown."""
    page.goto("/accounts/2fa/totp/activate/")
    flows.confirm_password(page)
    expect(page.get_by_role("heading", name="Activate Authenticator App")).to_be_visible()
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(current_code(secret))
    page.get_by_role("button", name="Activate").click()
    page.goto("/accounts/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    return secret, codes


def second_step(page, email: str, code: str) -> None:
    flows.sign_out(page)
    flows.sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    page.get_by_placeholder("Code").fill(code)
    page.get_by_role("main").get_by_role("button", name="Sign In", exact=True).click()


def shell(live_vouch, code: str) -> dict:
    return json.loads(live_vouch.vouch("manage", "shell", "-v", "0", "-c", code).stdout.strip().splitlines()[-1])


def test_totp_and_recovery_codes_then_a_swapped_secret_is_refused(contexts, outbox, live_vouch):
    owners = []
    for label in ("A", "B"):
        email = unique_email(f"totp{label.lower()}")
        company = f"Tally {label} Staffing"
        page = contexts.new_page(viewport={"width": 1280, "height": 900})
        flows.sign_up_company(page, name=f"Toni {label}", email=email, company=company, region="EU")
        flows.confirm_email(page, outbox, email)
        flows.expect_dashboard(page, company, "EU", "Owner")
        secret, codes = set_up_totp(page)
        owners.append((page, email, company, secret, codes))

    page, email, company, secret, codes = owners[0]
    second_step(page, email, current_code(secret))
    flows.expect_dashboard(page, company, "EU", "Owner")
    second_step(page, email, codes[0])
    flows.expect_dashboard(page, company, "EU", "Owner")

    # The attacker's own sealed secret, copied into the victim's row below Vouch.
    attacker_email, victim_email = owners[0][1], owners[1][1]
    swapped = shell(
        live_vouch,
        "import json\n"
        "from allauth.mfa.models import Authenticator as A\n"
        f"data = A.objects.filter(user__email__iexact={attacker_email!r}, type='totp')"
        ".values_list('data', flat=True).get()\n"
        f"n = A.objects.filter(user__email__iexact={victim_email!r}, type='totp').update(data=data)\n"
        "print(json.dumps({'n': n}))",
    )
    assert swapped == {"n": 1}
    victim = owners[1][0]
    second_step(victim, victim_email, current_code(secret))  # a code from the attacker's app
    expect(victim.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    expect(victim.get_by_role("main")).to_contain_text("failed an integrity check")
    assert "Something went wrong" not in victim.content(), live_vouch.log()[-4000:]
    if SCREENSHOTS:
        victim.screenshot(path=f"{SCREENSHOTS}/totp-swapped-secret.png", full_page=True)
    victim.goto("/dashboard/")
    expect(victim).not_to_have_url("/dashboard/")
    events = shell(
        live_vouch,
        "import json; from vouch.audit.models import SecurityEvent as S; "
        "print(json.dumps({'n': S.objects.filter(action='data_integrity_fail', target__contains='totp:secret')"
        ".count()}))",
    )
    assert events["n"] >= 1
