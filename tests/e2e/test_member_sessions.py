"""An owner signs a member out everywhere from the Members page, in a real browser against
`vouch serve`: the confirmation, the password asked again, the member's browser signed
out, the member emailed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e.support import unique_email
from tests.server import helpers

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path("/tmp")


def _team(server, owner_email: str, member_email: str, company: str) -> None:
    helpers.create_member(server, owner_email, company)
    params = json.dumps({"email": member_email, "password": helpers.PASSWORD, "owner": owner_email})
    helpers.run_django(
        server,
        f"""
        import json
        from allauth.account.models import EmailAddress
        from vouch.accounts.models import Membership, User
        from vouch.accounts.policy import Role
        p = json.loads({params!r})
        user = User.objects.create_user(p["email"], p["password"], full_name="Rita Recruiter")
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        company = Membership.objects.get(user__email=p["owner"]).company
        Membership.objects.create(user=user, company=company, role=Role.RECRUITER)
        """,
    )


def test_owner_signs_a_member_out_everywhere(contexts, page, outbox, live_vouch):
    owner_email, member_email = unique_email("owner"), unique_email("member")
    company = "Harbour Hiring"
    _team(live_vouch, owner_email, member_email, company)

    member = contexts.new_page(viewport={"width": 1280, "height": 900})
    flows.sign_in(member, member_email, helpers.PASSWORD)
    flows.expect_dashboard(member, company, "EU", "Recruiter")

    flows.sign_in(page, owner_email, helpers.PASSWORD)
    flows.open_members(page, company)
    row = flows.member_row(page, member_email)
    expect(flows.member_row(page, owner_email).get_by_role("button", name="Sign out everywhere")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Sign out everywhere").click()
    flows.confirm_password(page, helpers.PASSWORD)
    expect(page.get_by_role("status")).to_contain_text("Rita Recruiter was signed out of 1 session.")
    page.screenshot(path=str(SCREENSHOTS / "vouch-e2e-members-sign-out-everywhere.png"), full_page=True)

    member.reload()
    expect(member).to_have_url(re.compile(r"/accounts/login/"))
    mail = outbox.wait_for(member_email, "You were signed out of Vouch")
    assert f"(owner of {company})" in mail.body and "1 session ended" in mail.body
