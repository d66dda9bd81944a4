"""The company's accent colour, and whether it keeps the pages readable.

On the candidate's and referee's pages the accent colour replaces Vouch's blue: the
colour of links and of the text in outlined buttons, drawn on the pages' light
backgrounds, and the background of filled buttons, with white text on it. Both need
a contrast of 4.5:1 (WCAG 2.1 AA, 1.4.3), and the contrast of a colour with white is
the same either way round; so a colour is accepted only if it reaches 4.5:1 on every
light background the link pages use (vouch.css: white, --bg, the pale blue of
statuses). A colour that does not is refused, with a darker shade of it suggested."""

from __future__ import annotations

import re

# vouch.css: the cards (#fff), the page (--bg) and the statuses' pale blue, lightest first.
BACKGROUNDS = ("#ffffff", "#f6f7f9", "#eef3fb")
MIN_RATIO = 4.5
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


class ColourRefused(ValueError):
    """The colour cannot be the accent; the message says why and what to do."""


def luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def worst_contrast(colour: str) -> float:
    """The colour's contrast on the darkest of the pages' light backgrounds."""
    return min(contrast(colour, background) for background in BACKGROUNDS)


def darker_shade(colour: str) -> str:
    """The lightest shade of ``colour`` (same hue, each channel scaled down alike) that
    reads at 4.5:1 on every background."""
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    for step in range(100, -1, -1):
        shade = "#" + "".join(f"{round(c * step / 100):02x}" for c in channels)
        if worst_contrast(shade) >= MIN_RATIO:
            return shade
    return "#000000"


def parse_accent(raw: str) -> str:
    """``raw`` as ``#rrggbb`` (lower case); "" for no accent (Vouch's own blue).
    ``ColourRefused`` when it is not a colour or would not read at 4.5:1."""
    text = (raw or "").strip()
    if not text:
        return ""
    match = _HEX.fullmatch(text)
    if match is None:
        raise ColourRefused(f"“{text[:20]}” is not a colour: write it as # and six hexadecimal digits, e.g. #1f5fbf.")
    colour = "#" + match.group(1).lower()
    ratio = worst_contrast(colour)
    if ratio < MIN_RATIO:
        raise ColourRefused(
            f"{colour} is too light: text in it, and white text on it, would have a contrast of only "
            f"{ratio:.1f}:1 against the pages' light backgrounds, and WCAG AA needs {MIN_RATIO}:1 so that "
            f"everyone can read it. Choose a darker colour, for example {darker_shade(colour)}, the same hue "
            "made darker."
        )
    return colour
