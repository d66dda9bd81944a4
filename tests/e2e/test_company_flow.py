"""A company's first steps, clicked and typed in a real browser against `vouch serve`:
sign up, verify the address, sign in, invite a colleague, the colleague joins, roles change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e.support import PASSPHRASE, unique_email

pytestmark = pytest.mark.e2e


def test_company_signup_verification_and_sign_in(page, outbox):
    email = unique_email("owner")
    company = "Harbour Logistics"
    flows.sign_up_company(page, name="Olive Owner", email=email, company=company, region="EU")

    # Not verified yet: signing in stops at "verify your email", and the dashboard stays shut.
    flows.sign_in(page, email)
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/dashboard/$"))
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard")).to_have_count(0)

    flows.confirm_email(page, outbox, email)
    flows.expect_dashboard(page, company, "EU", "Owner")
    expect(page.get_by_role("main")).to_contain_text(f"Signed in as {email}")

    flows.sign_out(page)
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))

    flows.sign_in(page, email)
    flows.expect_dashboard(page, company, "EU", "Owner")


def test_wrong_password_does_not_sign_in(page, outbox):
    email = unique_email("owner")
    flows.sign_up_company(page, name="Pat Owner", email=email, company="Quay Staffing", region="US")
    flows.confirm_email(page, outbox, email)
    flows.expect_dashboard(page, "Quay Staffing", "US", "Owner")
    flows.sign_out(page)

    flows.sign_in(page, email, password="not the passphrase at all")
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("not correct")
    expect(page).not_to_have_url(re.compile(r"/dashboard/"))


def test_invitation_join_and_role_change(contexts, page, outbox):
    owner_email, invitee_email = unique_email("owner"), unique_email("recruiter")
    company = "Lighthouse Recruiting"
    flows.sign_up_company(page, name="Olive Owner", email=owner_email, company=company, region="EU")
    flows.confirm_email(page, outbox, owner_email)
    flows.expect_dashboard(page, company, "EU", "Owner")

    # The owner invites a recruiter: handing out a role asks for the password again
    # (signing in is not enough: a session left open must not hand out access).
    flows.open_members(page, company)
    flows.invite(page, invitee_email, "Recruiter", confirm=True)
    row = flows.pending_row(page, invitee_email)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Recruiter")
    invitation = outbox.wait_for(invitee_email, f"invited you to {company}")
    assert "as Recruiter" in invitation.body
    link = invitation.link(r"https://\S+/invitations/\S+/")

    # The invitee, in a browser of their own.
    invitee = contexts.new_page(viewport={"width": 1280, "height": 900})
    # Only the invited address can join: another one is refused on the form, before any account exists.
    invitee.goto(link)
    invitee.get_by_role("link", name="Create your account").click()
    invitee.get_by_label("Your name").fill("Rita Recruiter")
    invitee.get_by_label("Email").fill(unique_email("someone-else"))
    flows.password_field(invitee).fill(PASSPHRASE)
    invitee.get_by_label("Password (again)").fill(PASSPHRASE)
    invitee.get_by_role("button", name="Sign Up").click()
    expect(invitee.get_by_role("main")).to_contain_text("Sign up with the email address the invitation was sent to")
    expect(invitee.get_by_label("Company name")).to_have_count(0)
    flows.join_by_invitation(invitee, link, company=company, email=invitee_email, name="Rita Recruiter")
    # The link proved the address: no verification step, straight into the company.
    flows.expect_dashboard(invitee, company, "EU", "Recruiter")
    expect(invitee.get_by_role("status")).not_to_contain_text("Confirmation email sent")
    assert outbox.to(invitee_email, "Confirm Your Email") == []

    # A recruiter sees the members but cannot change anyone's role or invite.
    flows.open_members(invitee, company)
    expect(flows.member_row(invitee, owner_email)).to_contain_text("Owner")
    expect(flows.member_row(invitee, invitee_email)).to_contain_text("Recruiter")
    expect(invitee.get_by_role("button", name="Change role")).to_have_count(0)
    expect(invitee.get_by_role("combobox")).to_have_count(0)
    expect(invitee.get_by_role("button", name="Send invitation")).to_have_count(0)
    expect(invitee.get_by_role("button", name="Deactivate")).to_have_count(0)

    # The invitation is used up: gone from the owner's pending list, the link no longer works.
    page.reload()
    expect(flows.pending_row(page, invitee_email)).to_have_count(0)
    expect(flows.member_row(page, invitee_email)).to_contain_text("Rita Recruiter")
    stranger = contexts.new_page()
    stranger.goto(link)
    expect(stranger.get_by_role("heading", name="This invitation link is not valid")).to_be_visible()

    # The owner, signed in afresh on another computer, makes the recruiter a viewer.
    # A new sign-in is not a confirmation: the password is asked, then the change is made.
    desk = contexts.new_page(viewport={"width": 1280, "height": 900})
    flows.sign_in(desk, owner_email)
    flows.expect_dashboard(desk, company, "EU", "Owner")
    flows.open_members(desk, company)
    row = flows.member_row(desk, invitee_email)
    row.get_by_role("combobox").select_option(label="Viewer")
    row.get_by_role("button", name="Change role").click()
    # A wrong password changes nothing.
    flows.confirm_password(desk, "not the passphrase at all")
    expect(desk.get_by_role("main")).to_contain_text("Incorrect password")
    invitee.reload()
    expect(invitee.locator(".companybar")).to_contain_text("as Recruiter")
    flows.confirm_password(desk)
    expect(desk.get_by_role("status")).to_contain_text("is now Viewer")
    selected = flows.member_row(desk, invitee_email).locator("select option:checked")
    expect(selected).to_have_text("Viewer")

    # The invitee sees the new role on their next page.
    invitee.reload()
    expect(invitee.locator(".companybar")).to_contain_text("as Viewer")
    expect(flows.member_row(invitee, invitee_email)).to_contain_text("Viewer")
