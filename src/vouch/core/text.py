"""Single-line text: names, titles, organisations, company names, searches.

One rule for every field that holds one line, on member pages and link pages alike,
with one message. Refused: control characters (Unicode category Cc: CR, LF, tab, NUL,
the C1 controls such as NEL U+0085), the line and paragraph separators U+2028 and
U+2029 (mail readers and ``str.splitlines`` break lines at them), and the bidirectional
embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069), which make
text display in another order than it is stored (a name that shows as something it is
not, in a subject or on a page). Other format characters (Cf) are allowed: zero-width
joiners and non-joiners belong in Persian, Indic and emoji spellings of names, and the
left-to-right and right-to-left marks in names that mix scripts.

A line break in a name would otherwise reach an email's subject: a LF cuts the subject
and moves the rest of the name into the body, a lone CR makes Django refuse the header.
"""

from __future__ import annotations

import re
import unicodedata

from django import forms
from django.core.exceptions import ValidationError

MESSAGE = "Type this on one line, without line breaks or control characters."
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def is_refused(character: str) -> bool:
    return character in _BIDI_CONTROLS or unicodedata.category(character) in _REFUSED_CATEGORIES


def validate_single_line(value: str) -> None:
    if any(is_refused(character) for character in value):
        raise ValidationError(MESSAGE, code="control_characters")


def one_line(value: str) -> str:
    """``value`` with every refused character made a space and runs of spaces folded:
    for text stored before this rule held, where it goes into an email header."""
    text = "".join(" " if is_refused(character) else character for character in value)
    return re.sub(r" {2,}", " ", text).strip()


class SingleLineField(forms.CharField):
    """A ``CharField`` that refuses what :func:`validate_single_line` refuses."""

    default_validators = [validate_single_line]
