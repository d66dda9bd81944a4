"""The questionnaire builder in a real browser: a recruiter builds a questionnaire without
the page loading again (a marker on ``window`` survives every step), switches a question's
type and sees its fields change, reorders by keyboard (the focus stays on the moved
question) and by dragging, sees a message as they type, saves, and the saved
questionnaire has the questions in that order with those types. axe-core checks each
state; a screenshot of the builder is saved (VOUCH_E2E_SCREENSHOTS, or the test's own
directory)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e import questionnaire_flows as builder
from tests.e2e.questionnaire_flows import Question, card
from tests.e2e.support import unique_email

pytestmark = pytest.mark.e2e

COMPANY = "Northwind Talent"


def test_a_questionnaire_is_built_in_place_and_saved_in_its_order(contexts, outbox, tmp_path):
    page = contexts.new_page(viewport={"width": 1280, "height": 900})
    check_accessibility = contexts.accessibility.check
    email = unique_email("builder")
    flows.sign_up_company(page, name="Bea Builder", email=email, company=COMPANY, region="EU")
    flows.confirm_email(page, outbox, email)
    flows.expect_dashboard(page, COMPANY, "EU", "Owner")

    builder.open_builder(page)
    page.get_by_label("Name", exact=True).fill("Engineering referees")
    first = card(page, 1)
    # A free-text question: no choices, no scale.
    expect(first.get_by_label("Type")).to_have_value("text")
    expect(first.get_by_label("Choices, one per line")).to_have_count(0)
    expect(first.get_by_label("Label for 1, the lowest rating")).to_have_count(0)
    # Without JavaScript a button asks for the type's fields; here htmx does it as the type changes.
    expect(first.get_by_role("button", name="Show the fields for this type")).to_be_hidden()
    first.get_by_label("Question", exact=True).fill("What did they do best?")

    # Question 2: switched to a rating scale, then to single choice, then back: the fields follow.
    builder.add_question(page)
    builder.choose_type(page, 2, "rating")
    second = card(page, 2)
    expect(second.get_by_label("Highest rating", exact=True)).to_be_visible()
    expect(second.get_by_label("Choices, one per line")).to_have_count(0)
    check_accessibility(page)
    builder.choose_type(page, 2, "single")
    expect(card(page, 2).get_by_label("Choices, one per line")).to_be_visible()
    expect(card(page, 2).get_by_label("Highest rating", exact=True)).to_have_count(0)
    check_accessibility(page)
    builder.choose_type(page, 2, "rating")
    second = card(page, 2)
    second.get_by_label("Question", exact=True).fill("How reliable were they?")
    second.get_by_label("Highest rating", exact=True).select_option("10")
    second.get_by_label("Label for 1, the lowest rating").fill("Not at all")
    # A message as it is typed: the highest label typed and rubbed out.
    high = second.get_by_label("Label for the highest rating")
    high.press_sequentially("Al")
    high.press("Backspace")
    high.press("Backspace")
    message = second.locator("#q-1-high_label-error")
    expect(message).to_have_text("Label the highest rating (at most 50 characters).")
    expect(high).to_have_attribute("aria-describedby", "q-1-high_label-error")
    expect(high).to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    high.press_sequentially("Always")
    expect(message).to_have_text("")
    expect(high).not_to_have_attribute("aria-invalid", "true")

    builder.add_question(page)
    builder.fill_question(page, 3, Question("yes_no", "Would you hire them again?"))
    builder.add_question(page)
    builder.fill_question(page, 4, Question("multiple", "Which did they lead?", choices=("Hiring", "Budgets")))
    check_accessibility(page)

    # By keyboard: question 3 up twice, to the top; the focus stays on its Move up button,
    # which then says it can go no further.
    assert builder.move_by_keyboard(page, 3, "up") == 2
    assert builder.move_by_keyboard(page, 2, "up") == 1
    expect(page.get_by_role("button", name="Move up (question 1)")).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_role("status")).to_have_text("Question 2 moved up to position 1.")
    expect(card(page, 1).get_by_label("Question", exact=True)).to_have_value("Would you hire them again?")
    check_accessibility(page)

    # By dragging: the last question (multiple choice) to the top.
    handle = card(page, 4).locator("[data-drag-handle]")
    expect(handle).to_be_visible()
    # A drag stays within the window (the browser scrolls no page mid-drag here): a tall one.
    page.set_viewport_size({"width": 1280, "height": 3000})
    builder.swapped(page, "#builder", lambda: handle.drag_to(card(page, 1), target_position={"x": 40, "y": 5}))
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(card(page, 1).get_by_label("Question", exact=True)).to_have_value("Which did they lead?")
    expect(card(page, 1).get_by_role("heading")).to_be_focused()
    check_accessibility(page)

    builder.assert_not_reloaded(page)
    shots = Path(os.environ.get("VOUCH_E2E_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "questionnaire-builder.png"), full_page=True, caret="initial")

    url = builder.save(page, "Engineering referees")
    assert re.search(r"/questionnaires/[0-9a-f-]{36}/$", url)
    assert builder.preview_order(page) == [
        ("Which did they lead?", "multiple"),
        ("Would you hire them again?", "yes_no"),
        ("What did they do best?", "text"),
        ("How reliable were they?", "rating"),
    ]
    expect(page.locator(".questionnaire-preview input[name='p-q2'][type=radio]")).to_have_count(10)


def test_the_helper_builds_a_questionnaire_for_other_flows(contexts, outbox):
    page = contexts.new_page(viewport={"width": 1280, "height": 900})
    email = unique_email("helper")
    flows.sign_up_company(page, name="Hal Helper", email=email, company="Helper Hiring", region="US")
    flows.confirm_email(page, outbox, email)
    questions = [
        Question("rating", "How well did they communicate?", scale=("5", "Poorly", "Very well")),
        Question("single", "How did you work together?", choices=("Manager", "Peer", "Report")),
        Question("text", "Anything else?", help="Optional detail"),
    ]
    builder.build_questionnaire(page, "Support staff", questions)
    assert builder.preview_order(page) == [(q.prompt, q.kind) for q in questions]


def test_without_javascript_the_builder_works_by_whole_pages(contexts, outbox):
    """The same builder with JavaScript off: every button posts the page and the page comes
    back with the change made, the keyboard where it was, and the same questionnaire saved."""
    signed_in = contexts.new_page(viewport={"width": 1280, "height": 900})
    email = unique_email("nojs")
    flows.sign_up_company(signed_in, name="Nia Nojs", email=email, company="Plain Forms Ltd", region="CA")
    flows.confirm_email(signed_in, outbox, email)
    flows.expect_dashboard(signed_in, "Plain Forms Ltd", "CA", "Owner")
    page = contexts.new_page(
        viewport={"width": 1280, "height": 900},
        java_script_enabled=False,
        storage_state=signed_in.context.storage_state(),
    )
    page.goto("/questionnaires/new/")
    expect(page.locator("[data-drag-handle]")).to_be_hidden()
    page.get_by_label("Name", exact=True).fill("Plain one")
    card(page, 1).get_by_label("Question", exact=True).fill("What did they do best?")
    with page.expect_navigation():
        page.get_by_role("button", name="Add a question").click()
    expect(card(page, 2).get_by_label("Type")).to_be_focused()
    card(page, 2).get_by_label("Type").select_option("rating")
    expect(card(page, 2).get_by_label("Highest rating", exact=True)).to_have_count(0)  # nothing happens by itself
    with page.expect_navigation():
        page.get_by_role("button", name="Show the fields for this type (question 2)").click()
    second = card(page, 2)
    expect(second.get_by_label("Type")).to_be_focused()
    second.get_by_label("Question", exact=True).fill("How reliable were they?")
    second.get_by_label("Label for 1, the lowest rating").fill("Not at all")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    # Refused by the server with the same check: the message by its field, the summary first.
    expect(page.locator(".error-summary")).to_be_focused()
    expect(card(page, 2).locator("#q-1-high_label-error")).to_have_text(
        "Label the highest rating (at most 50 characters)."
    )
    card(page, 2).get_by_label("Label for the highest rating").fill("Completely")
    with page.expect_navigation():
        page.get_by_role("button", name="Move up (question 2)").click()
    expect(page.get_by_role("button", name="Move up (question 1)")).to_be_focused()
    expect(card(page, 1).get_by_label("Question", exact=True)).to_have_value("How reliable were they?")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Plain one")).to_be_visible()
    assert builder.preview_order(page) == [("How reliable were they?", "rating"), ("What did they do best?", "text")]
