"""Building a questionnaire in the browser, through the builder's in-place (htmx) steps:
shared by the builder's own test and any flow that needs a questionnaire of its own.

``build_questionnaire(page, name, questions)`` goes from the questionnaire list to the
saved questionnaire's page and returns its address. Every step is checked to have
happened without a page load (a marker set on ``window`` must survive until Save)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from playwright.sync_api import Locator, Page, expect

from vouch.references.questionnaires.services import TYPES

MARKER = "vouchBuilderMarker"


@dataclass(frozen=True)
class Question:
    kind: str  # a type of vouch.references.questionnaires.services.TYPES: "text", "rating", ...
    prompt: str
    choices: tuple[str, ...] = ()
    scale: tuple[str, str, str] = ("5", "", "")  # highest rating, label for 1, label for the highest
    help: str = ""


def open_builder(page: Page) -> None:
    """From the questionnaire list to an empty builder, with the no-reload marker set."""
    page.goto("/questionnaires/")
    page.get_by_role("link", name="New questionnaire").click()
    expect(page.get_by_role("heading", level=1, name="New questionnaire")).to_be_visible()
    page.wait_for_load_state("load")  # builder.js (deferred) has run
    page.evaluate(f"() => {{ window.{MARKER} = 'still here'; }}")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate(f"() => window.{MARKER}") == "still here", "the builder page was loaded again"


def card(page: Page, number: int) -> Locator:
    """Question ``number`` (1-based) of the builder."""
    return page.locator(f"#question-{number - 1}")


def swapped(page: Page, selector: str, action: Callable[[], None]) -> None:
    """Do ``action`` and wait until htmx has put a new ``selector`` in place of the old one."""
    page.locator(selector).evaluate("element => element.setAttribute('data-e2e-old', '')")
    action()
    expect(page.locator(f"{selector}:not([data-e2e-old])")).to_have_count(1)


def choose_type(page: Page, number: int, kind: str) -> None:
    """Pick the type: the question comes back with that type's fields."""
    swapped(page, f"#question-{number - 1}", lambda: card(page, number).get_by_label("Type").select_option(kind))
    question = card(page, number)
    expect(question.get_by_label("Choices, one per line")).to_have_count(1 if kind in ("single", "multiple") else 0)
    expect(question.get_by_label("Highest rating", exact=True)).to_have_count(1 if kind == "rating" else 0)


def fill_question(page: Page, number: int, question: Question) -> None:
    choose_type(page, number, question.kind)
    item = card(page, number)
    item.get_by_label("Question", exact=True).fill(question.prompt)
    if question.help:
        item.get_by_label("Help for the referee (optional)").fill(question.help)
    if question.choices:
        item.get_by_label("Choices, one per line").fill("\n".join(question.choices))
    if question.kind == "rating":
        highest, low, high = question.scale
        item.get_by_label("Highest rating", exact=True).select_option(highest)
        item.get_by_label("Label for 1, the lowest rating").fill(low)
        item.get_by_label("Label for the highest rating").fill(high)


def add_question(page: Page) -> int:
    """Add a question; the keyboard is on its Type then. Returns its number."""
    count = page.locator("[data-question-index]").count()
    swapped(page, "#builder", lambda: page.get_by_role("button", name="Add a question").click())
    expect(page.locator("[data-question-index]")).to_have_count(count + 1)
    expect(card(page, count + 1).get_by_label("Type")).to_be_focused()
    return count + 1


def move_by_keyboard(page: Page, number: int, direction: str) -> int:
    """Press question ``number``'s Move up / Move down with the keyboard; the focus stays on
    the moved question's same button. Returns the question's new number."""
    button = page.get_by_role("button", name=f"Move {direction} (question {number})")
    button.focus()
    swapped(page, "#builder", lambda: page.keyboard.press("Enter"))
    moved = number - 1 if direction == "up" else number + 1
    expect(page.get_by_role("button", name=f"Move {direction} (question {moved})")).to_be_focused()
    return moved


def save(page: Page, name: str) -> str:
    """Save; the questionnaire's page opens. Returns its address."""
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"{name} created.")
    return page.url


def build_questionnaire(page: Page, name: str, questions: list[Question]) -> str:
    """A new questionnaire with ``questions`` in this order, built in place and saved;
    returns the address of its page."""
    assert all(question.kind in TYPES for question in questions)
    open_builder(page)
    page.get_by_label("Name", exact=True).fill(name)
    for number, question in enumerate(questions, 1):
        if number > 1:
            add_question(page)
        fill_question(page, number, question)
    assert_not_reloaded(page)
    return save(page, name)


def preview_order(page: Page) -> list[tuple[str, str]]:
    """(prompt, kind) of each question on a questionnaire's page, in order."""
    found = page.evaluate(
        """() => Array.from(document.querySelectorAll('.questionnaire-preview > li')).map((item) => {
            const legend = item.querySelector('legend').firstChild.textContent.trim();
            const kind = item.querySelector('textarea') ? 'text'
              : item.querySelector('input[type=checkbox]') ? 'multiple'
              : item.querySelector('[id^=preview-low-]') ? 'rating'
              : item.querySelectorAll('input[type=radio]').length === 2
                && /Yes/.test(item.textContent) && /No/.test(item.textContent) ? 'yes_no' : 'single';
            return [legend, kind];
        })"""
    )
    return [(prompt, kind) for prompt, kind in found]
