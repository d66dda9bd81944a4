"""The core of the company flow on a phone-sized touch screen: nothing scrolls sideways,
the buttons a person needs are on screen, and the layout is worth a look (screenshots)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows
from tests.e2e.support import PHONE, unique_email

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path("/tmp")


def check_phone_layout(page: Page, *buttons) -> None:
    flows.no_horizontal_scroll(page)
    for button in buttons:
        expect(button).to_be_visible()
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None
        width = page.viewport_size["width"]
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{button} sticks out of the screen: {box}"


def test_phone_signup_verify_sign_in_and_invite(contexts, phone_page, outbox):
    page = phone_page
    email, invitee_email = unique_email("phone-owner"), unique_email("phone-invitee")
    company = "Pocket Talent Partners International"

    page.goto("/")
    check_phone_layout(page, page.get_by_role("main").get_by_role("link", name="Create a company account"))
    flows.sign_up_company(page, name="Mo Bile", email=email, company=company, region="AU")
    check_phone_layout(page)

    flows.confirm_email(page, outbox, email)
    flows.expect_dashboard(page, company, "AU", "Owner")
    # The navigation starts closed behind one Menu button: the top bar is one line, not three.
    menu = page.locator("details[data-menu]")
    expect(menu.locator("summary")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    assert page.locator("header.topbar").bounding_box()["height"] < 70
    menu.locator("summary").click()
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    check_phone_layout(
        page, navigation.get_by_role("link", name="Requests"), navigation.get_by_role("button", name="Sign out")
    )
    page.screenshot(path=str(SCREENSHOTS / "vouch-e2e-menu-phone.png"), full_page=True)

    flows.sign_out(page)
    page.goto("/accounts/login/")
    check_phone_layout(page, page.get_by_role("button", name="Sign In", exact=True))
    flows.sign_in(page, email)
    flows.expect_dashboard(page, company, "AU", "Owner")
    check_phone_layout(page, page.get_by_role("link", name="Invite and manage members"))
    page.screenshot(path=str(SCREENSHOTS / "vouch-e2e-dashboard-phone.png"), full_page=True)

    flows.open_members(page, company)
    check_phone_layout(page, page.get_by_role("button", name="Send invitation"))
    page.get_by_label("Email address").fill(invitee_email)
    page.get_by_label("Role").select_option(label="Admin")
    page.get_by_role("button", name="Send invitation").click()
    # Handing out a role asks for the password again: that page fits a phone too.
    expect(page.get_by_role("heading", name="Confirm Access")).to_be_visible()
    check_phone_layout(page, page.get_by_role("button", name="Confirm"))
    flows.confirm_password(page)
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {invitee_email}")
    expect(flows.pending_row(page, invitee_email)).to_contain_text("Admin")
    check_phone_layout(page, flows.pending_row(page, invitee_email).get_by_role("button", name="Withdraw"))

    # The invitee joins on a phone too, so the owner's member list has controls to lay out.
    invitee = contexts.new_page(**PHONE)
    link = outbox.wait_for(invitee_email, f"invited you to {company}").link(r"https://\S+/invitations/\S+/")
    invitee.goto(link)
    check_phone_layout(invitee, invitee.get_by_role("link", name="Create your account"))
    flows.join_by_invitation(invitee, link, company=company, email=invitee_email, name="Ada Admin")
    flows.expect_dashboard(invitee, company, "AU", "Admin")
    check_phone_layout(invitee)

    page.reload()
    row = flows.member_row(page, invitee_email)
    change_role = row.get_by_role("button", name="Change role")
    deactivate = row.get_by_role("button", name="Deactivate")
    check_phone_layout(page, change_role, deactivate)
    page.screenshot(path=str(SCREENSHOTS / "vouch-e2e-members-phone.png"), full_page=True)
