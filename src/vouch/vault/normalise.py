"""Normalising values before they are blind-indexed, so that equal things match:
``Alice@Example.COM `` and ``alice@example.com``; ``+44 7700 900123`` and
``07700 900123`` (with the default region GB)."""

from __future__ import annotations

import unicodedata

import phonenumbers
from django.conf import settings


def text(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).split())


def name(value: str) -> str:
    return text(value).casefold()


def email(value: str) -> str:
    return text(value).replace(" ", "").casefold()


def phone(value: str) -> str:
    """E.164 when phonenumbers can parse it (``VOUCH_PHONE_REGION`` for numbers without
    a country code), else the digits alone (and a leading +)."""
    raw = text(value)
    try:
        parsed = phonenumbers.parse(raw, settings.VOUCH_PHONE_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = "".join(c for c in raw if c.isdigit())
    return ("+" + digits) if raw.startswith("+") else digits


NORMALISERS = {"text": text, "name": name, "email": email, "phone": phone}
