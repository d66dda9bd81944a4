"""What a person does in the browser, step by step: shared by the desktop and phone tests."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import PASSPHRASE, Outbox
from vouch.config import REGION_LABELS


def password_field(page: Page):
    return page.get_by_label("Password:", exact=True)


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways: content {widths[0]}px, window {widths[1]}px"


def sign_up_company(page: Page, *, name: str, email: str, company: str, region: str = "EU") -> None:
    """From the start page to "verify your email"."""
    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Create a company account").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Company name").fill(company)
    page.get_by_role("radio", name=REGION_LABELS[region.lower()]).check()
    password_field(page).fill(PASSPHRASE)
    page.get_by_label("Password (again)").fill(PASSPHRASE)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Confirmation email sent to {email}")
    # The embedded default sends no mail out: the page says where the message is instead.
    expect(page.locator("#verification-local-outbox")).to_contain_text("local outbox")
    expect(page.get_by_role("main")).to_contain_text(".venv/bin/vouch outbox --latest")
    expect(page.get_by_role("main")).not_to_contain_text("check your spam folder")


def confirm_email(page: Page, outbox: Outbox, email: str) -> None:
    """Open the newest verification link sent to ``email`` and press Confirm."""
    mail = outbox.wait_for(email, "Confirm Your Email")
    page.goto(mail.link(r"https://\S+/accounts/confirm-email/\S+"))
    expect(page.get_by_role("heading", name="Confirm Email Address")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(email)
    page.get_by_role("button", name="Confirm").click()


def sign_in(page: Page, email: str, password: str = PASSPHRASE) -> None:
    page.goto("/")
    open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    page.get_by_label("Email").fill(email)
    password_field(page).fill(password)
    page.get_by_role("button", name="Sign In", exact=True).click()


def open_menu(page: Page) -> None:
    """On a phone the main navigation is behind its Menu button (a <details> disclosure)."""
    page.wait_for_load_state("domcontentloaded")  # vouch.js (deferred) has closed it on a phone by then
    menu = page.locator("details[data-menu]")
    if menu.locator("summary").is_visible() and menu.get_attribute("open") is None:
        menu.locator("summary").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def sign_out(page: Page) -> None:
    open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You have signed out")
    open_menu(page)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")).to_be_visible()


def expect_dashboard(page: Page, company: str, region: str, role: str) -> None:
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(company)
    bar = page.locator(".companybar")
    expect(bar).to_contain_text(company)
    expect(bar.locator(".badge")).to_have_text(REGION_LABELS[region.lower()])
    expect(bar).to_contain_text(f"as {role}")


def open_members(page: Page, company: str) -> None:
    open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name=f"Members of {company}")).to_be_visible()


def confirm_password(page: Page, password: str = PASSPHRASE) -> None:
    """allauth's re-authentication page, which must be showing now: type the password;
    allauth then carries out the request that was held back."""
    expect(page.get_by_role("heading", name="Confirm Access")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    password_field(page).fill(password)
    page.get_by_role("button", name="Confirm").click()


def invite(page: Page, email: str, role: str, *, confirm: bool = False) -> None:
    """On the members page: invite ``email`` with ``role``. ``confirm``: the password is
    asked first (the first access change since signing in)."""
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Role").select_option(label=role)
    page.get_by_role("button", name="Send invitation").click()
    if confirm:
        confirm_password(page)
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {email}")


def pending_row(page: Page, email: str):
    return page.get_by_role("table", name="Pending invitations").get_by_role("row").filter(has_text=email)


def member_row(page: Page, email: str):
    return page.get_by_role("table", name="Members").get_by_role("row").filter(has_text=email)


def join_by_invitation(page: Page, link: str, *, company: str, email: str, name: str) -> None:
    """The invitee: open the emailed link, create an account, land in the company."""
    page.goto(link)
    expect(page.get_by_role("heading", name=f"Join {company}")).to_be_visible()
    # The token leaves the address bar at once.
    expect(page).to_have_url(re.compile(r"/invitations/accept/$"))
    page.get_by_role("link", name="Create your account").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
    expect(page.get_by_label("Email")).to_have_value(email)
    expect(page.get_by_label("Company name")).to_have_count(0)
    expect(page.get_by_role("radio")).to_have_count(0)
    page.get_by_label("Your name").fill(name)
    password_field(page).fill(PASSPHRASE)
    page.get_by_label("Password (again)").fill(PASSPHRASE)
    page.get_by_role("button", name="Sign Up").click()


def add_candidate(page: Page, name: str, email: str) -> None:
    """From anywhere to the new candidate's page, through Candidates > Add a candidate."""
    open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Candidates").click()
    page.get_by_role("link", name="Add a candidate").click()
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Add candidate").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def type_search(page: Page, accessibility, text: str, *, box: str, results: str) -> Locator:
    """Type ``text`` into the search box labelled ``box`` key by key, as a person does,
    without pressing Enter, and wait until htmx has put the results for the whole text
    into the element with id ``results`` (not a full page load: the page's own marker
    survives). axe-core then checks the page in that state (``accessibility``: the
    test's ``contexts.accessibility``). Returns the results element.

    For any list that searches as the recruiter types (Candidates, Requests)."""
    field = page.get_by_label(box, exact=True)
    field.fill("")
    page.evaluate("() => { window.__vouchTyped = true; }")
    with page.expect_response(lambda response: _asks_for(response, text)):
        field.press_sequentially(text, delay=40)
    # The fragment is in once htmx has finished swapping and settling it.
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    assert page.evaluate("() => window.__vouchTyped === true"), "the search loaded a new page instead of updating"
    expect(field).to_have_value(text)
    accessibility.check(page)
    return page.locator(f"#{results}")


def _asks_for(response, text: str) -> bool:
    query = parse_qs(urlparse(response.url).query)
    return response.request.headers.get("hx-request") == "true" and query.get("q") == [text]


def logo_png(size: tuple[int, int] = (240, 80), colour: tuple[int, int, int] = (11, 83, 148)) -> bytes:
    """A small logo to upload: a coloured bar with a white square, as a PNG."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((size[1] // 4, size[1] // 4, size[1] * 3 // 4, size[1] * 3 // 4), fill="white")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def set_branding(page: Page, *, logo: bytes | None = None, accent: str = "", remove_logo: bool = False) -> None:
    """As an owner or admin: from any page, through Company settings to Branding, upload
    ``logo`` (PNG bytes; None keeps the current one) and set ``accent`` ("#rrggbb"; ""
    for Vouch's blue), and save; or, with ``remove_logo``, remove the current logo."""
    open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Company").click()
    page.get_by_role("link", name="Branding settings").click()
    expect(page.get_by_role("heading", name="Branding", exact=True)).to_be_visible()
    if remove_logo:
        page.once("dialog", lambda dialog: dialog.accept())  # the data-confirm question
        page.get_by_role("button", name="Remove logo").click()
        expect(page.get_by_role("status")).to_contain_text("Logo removed")
        return
    if logo is not None:
        page.get_by_label("Logo:", exact=True).set_input_files(
            {"name": "logo.png", "mimeType": "image/png", "buffer": logo}
        )
    page.get_by_label("Accent colour:", exact=True).fill(accent)
    page.get_by_role("button", name="Save branding").click()
    expect(page.get_by_role("status")).to_contain_text("Branding saved.")
    if logo is not None:
        expect(page.locator("#current-logo img.brand-logo")).to_be_visible()
