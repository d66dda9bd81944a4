"""Normalising values before they are blind-indexed, so that equal things match:
``Alice@Example.COM `` and ``alice@example.com``; ``+44 7700 900123`` and
``07700 900123`` (with the default region GB)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

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


# --- name words for the search index ----------------------------------------------------

# Apostrophes join the letters either side ("O'Brien" is one name, often typed "OBrien");
# every other punctuation mark inside a word (hyphens, dots, brackets...) separates names
# ("Mary-Jane" is often typed "Mary Jane"). The modifier letter apostrophe and the grave
# accent are not Unicode punctuation, but are typed as apostrophes (as is the prime).
APOSTROPHES = frozenset("'\u2018\u2019\u02bc\u0060\u2032")
# More terms than a real name has; a 200-character name of one-letter words cannot make
# the index grow without end. Whole words come first, so a cut only loses their parts
# (and, for accented names, first the terms as written before accents were folded).
MAX_NAME_TERMS = 64


def _is_punctuation(char: str) -> bool:
    return char in APOSTROPHES or unicodedata.category(char).startswith("P")


def _separates(char: str) -> bool:
    return char not in APOSTROPHES and unicodedata.category(char).startswith("P")


def _pieces(word: str, cut: Callable[[str], bool]) -> list[str]:
    """``word`` cut where ``cut(char)`` is true, each piece without the rest of its
    punctuation; empty pieces dropped."""
    pieces: list[str] = []
    piece: list[str] = []
    for char in word:
        if cut(char):
            pieces.append("".join(piece))
            piece = []
        elif not _is_punctuation(char):
            piece.append(char)
    pieces.append("".join(piece))
    return [p for p in pieces if p]


# --- accents: folded forms, so "Jose", "Muller" and "Lukasz" find "José Müller Łukasz" ---

# Latin letters that Unicode does not decompose into a base letter and marks, folded as
# people type them without the key for them. Lower case only: names are casefolded
# first (which already makes "ß" "ss" and "ẞ"/"Ø"/"Ł" lower case).
LATIN_LETTERS = {
    "ø": "o",  # Søren
    "ł": "l",  # Łukasz
    "đ": "d",  # Đorđević
    "ð": "d",  # Guðrún
    "ħ": "h",  # Maltese
    "ŧ": "t",  # Sámi
    "æ": "ae",  # Ærø
    "œ": "oe",  # Œuvray
    "þ": "th",  # Þórunn
    "ı": "i",  # Turkish dotless i (Işık); "İ" casefolds to "i" and a dot mark
}
# Scripts whose marks are dropped. Other scripts keep theirs: a Devanagari vowel sign or
# virama is part of the letter, not an accent, and stripping Cyrillic "й" to "и" would
# make different names match. Greek typed without its tonos is common (and upper case
# Greek has none), so "Παπαδοπουλος" finds "Παπαδόπουλος".
FOLDED_SCRIPTS = ("LATIN ", "GREEK ")


def _folds(char: str) -> bool:
    return unicodedata.name(char, "").startswith(FOLDED_SCRIPTS)


def fold(word: str) -> str:
    """``word`` (normalised as a name) without the accents of its Latin and Greek
    letters: "josé" -> "jose", "dvořák" -> "dvorak", "søren" -> "soren".

    The standard library's NFKD plus a ten-letter table rather than a transliteration
    package (anyascii, text-unidecode): those turn every script into ASCII ("张伟" ->
    "ZhangWei"), so non-Latin names that sound alike would find each other, where
    here they stay exactly as they were, and Vouch takes on no dependency for it."""
    kept, strip = [], False
    for char in unicodedata.normalize("NFKD", word):
        if unicodedata.category(char) == "Mn":
            # A mark goes with the letter before it: dropped after a Latin or Greek one.
            if not strip:
                kept.append(char)
            continue
        strip = _folds(char)
        kept.append(LATIN_LETTERS.get(char, char) if strip else char)
    return unicodedata.normalize("NFC", "".join(kept))


def _terms(words: list[str]) -> list[str]:
    """The index terms of a name's whitespace words, in order, whole words first."""
    found = dict.fromkeys(piece for word in words for piece in _pieces(word, lambda char: False))
    for word in words:
        if any(_is_punctuation(char) for char in word):
            found.update(dict.fromkeys(_pieces(word, _separates)))
            found.update(dict.fromkeys(_pieces(word, _is_punctuation)))
    return list(found)


def name_words(value: str, *, query: bool = False) -> set[str]:
    """The words of a name as the search index holds them (``query=False``), or the
    words a typed search must all find (``query=True``), normalised as names.

    Indexed, each whitespace-separated word gives: the word without its punctuation
    ("maryjane", "obrien"), its pieces between separators with apostrophes removed
    ("smith" and "obrien" of "Smith-O'Brien"), and its parts between any punctuation
    ("mary", "jane", "o", "brien"); each of these also without its accents ("müller"
    and "muller"). A typed word gives only its pieces between separators, without
    accents ("Mary-Jane": "mary" and "jane"; "O'Brien" and "OBrien": "obrien";
    "Müller": "muller"), so "Mary-Jane O'Brien" is found by "mary jane", "Mary-Jane",
    "Jane", "O'Brien", "OBrien" or "brien", and not by "Mar" (whole words only), and
    "José Müller" by "Jose", "josé" or "Muller"."""
    words = name(value).split()
    if query:
        return {fold(piece) for word in words for piece in _pieces(word, _separates)}
    # The folded terms are the ones a search looks up, whole words first; the terms as
    # written before accents were folded follow, so a server still running that rule
    # during an upgrade (or after a rollback) finds the same names. A name cut at
    # MAX_NAME_TERMS loses those first, then folded parts of words, folded whole words last.
    terms = _terms(words)
    found = dict.fromkeys([fold(term) for term in terms] + terms)
    return set(list(found)[:MAX_NAME_TERMS])


# --- the starts of name words, for search as recruiters type ------------------------------

# A typed word this long or longer is looked up as the start of a name word ("Mar" finds
# "Maria" and "Marek"). Shorter ones only as whole words ("Li", "Wu"): one or two letters
# would match a large share of any company's candidates, and digests of them would let
# whoever holds the database count first letters.
PREFIX_MIN_CHARS = 3
# Starts are indexed up to this length; a longer typed word is looked up by its first
# PREFIX_MAX_CHARS characters. Twelve characters single out a name word in practice (most
# are shorter, and are then indexed whole), and the cap keeps a name's rows bounded (at
# most 10 per word) and stops the rows from telling how long a long word is.
PREFIX_MAX_CHARS = 12


def name_prefixes(value: str) -> set[str]:
    """The starts of a name's words that the prefix index holds: of each folded term
    (``name_words``: whole words, the pieces of hyphenated and apostrophe words, accents
    of Latin and Greek letters removed, other scripts as written), every start of
    PREFIX_MIN_CHARS to PREFIX_MAX_CHARS characters. "Mary-Jane O'Brien" gives "mar",
    "mary", "mar"... "maryjane", "jan", "jane", "obr"... "obrien", "bri"... "brien"."""
    terms = list(dict.fromkeys(fold(term) for term in _terms(name(value).split())))[:MAX_NAME_TERMS]
    return {term[:length] for term in terms for length in range(PREFIX_MIN_CHARS, min(len(term), PREFIX_MAX_CHARS) + 1)}


def query_prefix(word: str) -> str | None:
    """The start a typed word (already a query word of ``name_words``) is looked up by,
    or None if it is too short to be looked up as a start."""
    if len(word) < PREFIX_MIN_CHARS:
        return None
    return word[:PREFIX_MAX_CHARS]
