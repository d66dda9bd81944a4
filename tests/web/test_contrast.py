"""Colour contrast, computed from vouch.css itself (WCAG 2.1 relative luminance): text at
4.5:1 or more against what it is drawn on (1.4.3), form field borders and the focus ring at
3:1 or more (1.4.11). axe-core checks text in the page states the browser tests reach
(docs/development/accessibility.md); this covers every badge and field the stylesheet
styles, reached or not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "src/vouch/web/static/vouch/vouch.css").read_text()
RULES = [
    (selector.strip(), body)
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", re.sub(r"/\*.*?\*/", "", CSS, flags=re.S))
]
VARIABLES = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", next(b for s, b in RULES if s == ":root")))
WHITE = "#ffffff"


def colour(value: str) -> str:
    value = value.strip()
    if value in ("#fff", "#FFF"):
        return WHITE
    match = re.fullmatch(r"var\(--([a-z-]+)\)", value)
    return VARIABLES[match.group(1)] if match else value


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(colour(first)), luminance(colour(second))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def declaration(body: str, name: str) -> str | None:
    match = re.search(rf"(?:^|;)\s*{name}\s*:\s*([^;]+)", body)
    return match.group(1).strip() if match else None


def test_the_ratio_is_computed_as_wcag_defines_it():
    assert round(ratio("#000000", WHITE), 2) == 21.0
    assert round(ratio("#777777", WHITE), 2) == 4.48  # the usual example of "just fails"
    assert round(ratio("#b26b00", WHITE), 1) == 4.2  # the report's old Medium badge


@pytest.mark.parametrize("background", ["#ffffff", "var(--bg)", "#eef3fb"])
@pytest.mark.parametrize("text", ["var(--ink)", "var(--muted)", "var(--brand)", "var(--danger)", "var(--ok)"])
def test_text_colours_on_the_page_card_and_bar_backgrounds(text, background):
    assert ratio(text, background) >= 4.5, (text, background)


def badge_backgrounds() -> list[tuple[str, str, str]]:
    """(selector, background, text colour) of every badge-like rule: white text unless it says."""
    found = []
    for selector, body in RULES:
        background = declaration(body, "background")
        if background and re.search(r"\.(badge|step-no)\b", selector):
            found.append((selector, background, declaration(body, "color") or WHITE))
    return found


def test_every_badge_reads_at_4_5_to_1():
    badges = badge_backgrounds()
    assert len(badges) >= 10  # the rules were found
    assert any("severity-medium" in selector for selector, _, _ in badges)
    for selector, background, text in badges:
        assert ratio(text, background) >= 4.5, f"{selector}: {ratio(text, background):.2f}:1"


def test_coloured_messages_and_statuses_read_at_4_5_to_1():
    checked = 0
    for selector, body in RULES:
        background, text = declaration(body, "background"), declaration(body, "color")
        if (
            background
            and text
            and background.startswith(("#", "var("))
            and re.search(r"message|ref-status|required|mismatch", selector)
        ):
            assert ratio(text, background) >= 4.5, f"{selector}: {ratio(text, background):.2f}:1"
            checked += 1
    assert checked >= 6


def test_form_field_borders_and_the_focus_ring_stand_out_at_3_to_1():
    fields = [
        (selector, declaration(body, "border"))
        for selector, body in RULES
        if re.search(r"\binput\[type=|(?<![-.])\bselect\b|\btextarea\b", selector)
        and "solid" in (declaration(body, "border") or "")
    ]
    assert len(fields) >= 3
    for selector, border in fields:
        edge = border.split()[-1]
        for background in (WHITE, "var(--bg)"):
            assert ratio(edge, background) >= 3, f"{selector}: {ratio(edge, background):.2f}:1 on {background}"
    focus = next(body for selector, body in RULES if selector == ":focus-visible")
    ring = declaration(focus, "outline").split()[-1]
    for background in (WHITE, "var(--bg)", "#eef3fb"):
        assert ratio(ring, background) >= 3
