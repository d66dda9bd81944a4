"""What recruiters, candidates and referees do in the browser during a reference check,
step by step, found by role and label as a person would find them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from playwright.sync_api import Locator, Page, expect

from tests.e2e import flows
from tests.e2e.support import Outbox, unique_email

RELATIONSHIPS = {"manager": "Manager", "peer": "Peer", "report": "Direct report", "client": "Client"}


@dataclass(frozen=True)
class Referee:
    name: str
    email: str
    relationship: str  # a Relationship value
    organisation: str
    worked_from: str  # YYYY-MM
    worked_to: str
    strengths: str  # what they will write as the candidate's strengths


def referee(name: str, prefix: str, relationship: str, organisation: str, worked_from: str, worked_to: str) -> Referee:
    """A referee with a unique work address (not free mail: no flag for that)."""
    address = unique_email(prefix).replace("@example.com", f"@{organisation.lower().replace(' ', '-')}.example")
    strengths = f"{name.split()[0]} says: calm under pressure, explains numbers plainly, mentors new starters."
    return Referee(name, address, relationship, organisation, worked_from, worked_to, strengths)


# --- the recruiter ----------------------------------------------------------------------


def create_request(
    page: Page,
    *,
    name: str,
    email: str,
    role: str,
    referees: int,
    guidance: str,
    deadline: date,
    questionnaire: str = "General professional (built-in)",
) -> str:
    """From the dashboard, through the request form, to the new request's page; its URL."""
    flows.open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(page).to_have_url(re.compile(r"/requests/$"))
    page.get_by_role("main").get_by_role("link", name="New request").first.click()
    expect(page.get_by_role("heading", name="New reference request")).to_be_visible()
    page.get_by_label("Candidate's full name").fill(name)
    page.get_by_label("Candidate's email address").fill(email)
    page.get_by_label("Role applied for").fill(role)
    page.get_by_label("Questionnaire").select_option(label=questionnaire)
    page.get_by_label("Number of referees").select_option(str(referees))
    page.get_by_label("Guidance for the candidate").fill(guidance)
    page.get_by_label("Deadline").fill(deadline.isoformat())
    page.get_by_role("button", name="Send request").click()
    expect(page).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("status")).to_contain_text(f"Request sent: {name} has been emailed their link.")
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    return page.url


# --- the candidate ----------------------------------------------------------------------


def confirm_candidate_details(page: Page, *, name: str, email: str) -> None:
    """Step 1 on the candidate's page: what the recruiter typed is shown; confirm it."""
    expect(page.get_by_label("Full name:", exact=True)).to_have_value(name)
    expect(page.get_by_label("Email address:", exact=True)).to_have_value(email)
    page.get_by_role("button", name="Confirm my details").click()
    expect(page.get_by_role("status")).to_contain_text("your details are confirmed")


def fill_referee(page: Page, person: Referee) -> None:
    """The nomination form (on the candidate's page or the replace page)."""
    page.get_by_label("Their full name").fill(person.name)
    page.get_by_label("Their email address").fill(person.email)
    page.get_by_label("They were your").select_option(label=RELATIONSHIPS[person.relationship])
    page.get_by_label("Organisation:", exact=True).fill(person.organisation)
    choose_month(page, "Worked together from", person.worked_from)
    choose_month(page, "Worked together until", person.worked_to)


def choose_month(page: Page, legend: str, month: str) -> None:
    """A month field (vouch.references.months): a group named by its legend, with a Month
    and a Year select; ``month`` is "YYYY-MM"."""
    group = page.get_by_role("group", name=legend)
    year, number = month.split("-") if month else ("", "")
    group.get_by_label("Month").select_option(number)
    group.get_by_label("Year").select_option(year)


def nominate(page: Page, person: Referee) -> None:
    fill_referee(page, person)
    page.get_by_role("button", name="Nominate referee").click()
    expect(page.get_by_role("status")).to_contain_text("Referee added")
    expect(candidate_referee(page, person.name)).to_be_visible()


def candidate_referee(page: Page, name: str) -> Locator:
    """A referee's entry on the candidate's page."""
    return page.get_by_role("listitem").filter(has=page.get_by_text(name, exact=True))


def replace(page: Page, old_name: str, person: Referee) -> None:
    """On the candidate's page: replace ``old_name`` (who declined) with ``person``."""
    page.get_by_role("link", name=f"Replace {old_name}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Replace {old_name}")
    fill_referee(page, person)
    page.get_by_role("button", name="Nominate instead").click()
    expect(page.get_by_role("status")).to_contain_text("Referee replaced")
    expect(candidate_referee(page, person.name)).to_be_visible()


# --- the referees -----------------------------------------------------------------------


def referee_link(outbox: Outbox, address: str) -> str:
    """The private link in the newest invitation mailed to ``address``."""
    return outbox.wait_for(address, "named you as a referee").link(r"https://\S+/r/[A-Za-z0-9_-]+/")


def confirm_identity(page: Page, *, candidate: str) -> None:
    """Step 1 of the referee's page: who they are and when they worked with the candidate."""
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Reference for {candidate}")
    page.get_by_label("Your job title").fill("Finance Director")
    page.get_by_label("Your organisation").fill("Acme Widgets")
    page.get_by_label(f"{candidate}'s job title when you worked together").fill("Senior Analyst")
    # Half a month first: the page comes back with its error summary focused, and says which half is missing.
    page.get_by_role("group", name="You worked together from").get_by_label("Year").select_option("2021")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.get_by_role("group", name="You worked together from")).to_contain_text(
        "Choose the month as well as the year."
    )
    choose_month(page, "You worked together from", "2021-01")
    choose_month(page, "You worked together until", "2024-06")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Questions about {candidate}")


def question(page: Page, prompt: str) -> Locator:
    return page.get_by_role("group", name=re.compile(re.escape(prompt)))


def answer_general_professional(page: Page, *, strengths: str) -> None:
    """Answer the built-in general professional questionnaire and submit it."""
    question(page, "How did you work with the candidate?").get_by_label("I managed them").check()
    page.get_by_role("textbox", name="When did you work together, and what was their role?").fill(
        "2021 to 2024; senior analyst in the finance team."
    )
    question(page, "How reliable were they?").get_by_role("radio", name="5", exact=True).check()
    question(page, "How would you rate the quality of their work?").get_by_role("radio", name="4", exact=True).check()
    page.get_by_role("textbox", name="What are their main strengths?").fill(strengths)
    # Progress is saved as the referee goes.
    expect(page.locator("#autosave-status")).to_contain_text("Saved at")
    question(page, "Would you work with or hire them again?").get_by_label("Yes", exact=True).check()
    # Submitting asks "are you sure?" first: the referee says yes.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Submit reference").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")


def decline(page: Page, reason: str) -> None:
    page.get_by_role("link", name="Decline to give a reference").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Decline to give a reference")
    page.get_by_label("Why are you declining?").fill(reason)
    page.get_by_role("button", name="Decline", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You declined to give a reference")
