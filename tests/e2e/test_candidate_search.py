"""Search as the recruiter types, in a real browser against `vouch serve`: candidates
added through the pages, then "Mar" typed into the Candidates search (no Enter) shows
Maria and Marek, not Omar; more letters narrow it; a name nobody has says so; the
requests list finds its candidates the same way. axe-core checks every state the
results are put in (flows.type_search), and the address follows the search, so a
reload or a shared link shows the same results without JavaScript's help."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e import flows, reference_flows
from tests.e2e.support import unique_email

pytestmark = pytest.mark.e2e

CANDIDATE_BOX = "Name, email or phone number:"


def test_typing_mar_into_the_candidates_search_shows_maria_and_marek(contexts, outbox):
    page = contexts.new_page(viewport={"width": 1280, "height": 900})
    email = unique_email("search")
    flows.sign_up_company(page, name="Sam Searcher", email=email, company="Typeahead Talent", region="EU")
    flows.confirm_email(page, outbox, email)
    for name in ("Maria Kowalska", "Marek Nowak", "Omar Haddad"):
        flows.add_candidate(page, name, unique_email(name.split()[0].lower()))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Candidates").click()
    expect(page.get_by_role("heading", name="Candidates", level=1)).to_be_visible()

    results = flows.type_search(page, contexts.accessibility, "Mar", box=CANDIDATE_BOX, results="candidate-results")
    expect(results.get_by_role("link", name="Maria Kowalska")).to_be_visible()
    expect(results.get_by_role("link", name="Marek Nowak")).to_be_visible()
    expect(results.get_by_role("link", name="Omar Haddad")).to_have_count(0)
    expect(results).to_contain_text("2 candidates match “Mar”.")
    expect(page.locator("#candidate-search-status")).to_have_text("2 candidates match “Mar”.")
    expect(page).to_have_url(re.compile(r"/candidates/\?q=Mar$"))

    results = flows.type_search(page, contexts.accessibility, "Mare", box=CANDIDATE_BOX, results="candidate-results")
    expect(results.get_by_role("link", name="Marek Nowak")).to_be_visible()
    expect(results.get_by_role("link", name="Maria Kowalska")).to_have_count(0)

    results = flows.type_search(page, contexts.accessibility, "xyz", box=CANDIDATE_BOX, results="candidate-results")
    expect(results.locator("#no-match")).to_contain_text("No candidates match “xyz”.")

    # The address kept the search: reloading it is the whole page, with the same answer.
    page.reload()
    expect(page.get_by_label(CANDIDATE_BOX, exact=True)).to_have_value("xyz")
    expect(page.locator("#no-match")).to_contain_text("No candidates match “xyz”.")

    # The requests list searches as the recruiter types too (with its other filters).
    reference_flows.create_request(
        page,
        name="Marianne Dupont",
        email=unique_email("marianne"),
        role="Analyst",
        referees=2,
        guidance="",
        deadline=date.today() + timedelta(days=14),
    )
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    results = flows.type_search(page, contexts.accessibility, "mari", box="Search", results="request-results")
    expect(results.get_by_role("link", name="Marianne Dupont")).to_be_visible()
    expect(page.locator("#request-search-status")).to_have_text("1 request matches “mari”.")


def test_a_search_refused_as_busy_says_so_and_asks_again(contexts, outbox):
    """A company's searches at once are limited (429 when busy, docs/security/limits.md):
    the page must not leave the earlier results as if they answered the new words. The
    first answer to "Mar" is made a 429 here; the page says so and tries again itself."""
    page = contexts.new_page(viewport={"width": 1280, "height": 900})
    email = unique_email("busy")
    flows.sign_up_company(page, name="Bea Busy", email=email, company="Busy Bees Hiring", region="EU")
    flows.confirm_email(page, outbox, email)
    flows.add_candidate(page, "Maria Kowalska", unique_email("maria"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Candidates").click()
    refused = []

    def busy_once(route):
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=429, headers={"Retry-After": "1"}, body="Busy, try again in a moment.")
        else:
            route.continue_()

    page.route(re.compile(r"/candidates/\?q=Mar$"), busy_once)
    page.get_by_label(CANDIDATE_BOX, exact=True).press_sequentially("Mar", delay=40)
    busy = page.locator("#candidate-results .search-busy")
    expect(busy).to_have_text("Vouch is busy: your search will be tried again in a moment.")
    contexts.accessibility.check(page)
    # Tried again after Retry-After, without another key pressed: the answer replaces the note.
    expect(page.locator("#candidate-results").get_by_role("link", name="Maria Kowalska")).to_be_visible()
    expect(busy).to_have_count(0)
    expect(page.locator("#candidate-search-status")).to_have_text("1 candidate matches “Mar”.")
    assert len(refused) == 1
