"""Candidates' name search terms are written again with their accents folded as well
("José Müller" is also found by "Jose" and "Muller", "Łukasz" by "Lukasz").

Both rules are frozen here, copied from ``vouch.vault.normalise`` as they were when this
migration was written: a later change to the search's rule comes with a migration of
its own, and does not change what this one writes (forward) or restores (backward, the
rule of 0006).

The terms are blind indexes under the company's index key, and names are encrypted
under its data key: ``vouch tenants migrate`` runs each company's migrations inside
its company context. A database with no candidates (a region's template, a new
company) needs no key and migrates anywhere. Writing a candidate's terms replaces
them, so running this again gives the same rows."""

import unicodedata
from importlib import import_module

from django.db import migrations


# --- the rules, frozen ----------------------------------------------------------------

APOSTROPHES = frozenset("'\u2018\u2019\u02bc\u0060\u2032")
MAX_NAME_TERMS = 64
LATIN_LETTERS = {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ŧ": "t", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i"}
FOLDED_SCRIPTS = ("LATIN ", "GREEK ")


def _is_punctuation(char: str) -> bool:
    return char in APOSTROPHES or unicodedata.category(char).startswith("P")


def _separates(char: str) -> bool:
    return char not in APOSTROPHES and unicodedata.category(char).startswith("P")


def _pieces(word: str, cut) -> list[str]:
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


def _terms(name: str) -> list[str]:
    """0006's terms of a name, whole words first, not yet cut at MAX_NAME_TERMS."""
    words = " ".join(unicodedata.normalize("NFKC", name).split()).casefold().split()
    found = dict.fromkeys(piece for word in words for piece in _pieces(word, lambda char: False))
    for word in words:
        if any(_is_punctuation(char) for char in word):
            found.update(dict.fromkeys(_pieces(word, _separates)))
            found.update(dict.fromkeys(_pieces(word, _is_punctuation)))
    return list(found)


def fold(word: str) -> str:
    kept, strip = [], False
    for char in unicodedata.normalize("NFKD", word):
        if unicodedata.category(char) == "Mn":
            if not strip:
                kept.append(char)
            continue
        strip = unicodedata.name(char, "").startswith(FOLDED_SCRIPTS)
        kept.append(LATIN_LETTERS.get(char, char) if strip else char)
    return unicodedata.normalize("NFC", "".join(kept))


def name_words_now(name: str) -> set[str]:
    # The folded terms (whole words first), then 0006's terms.
    terms = _terms(name)
    found = dict.fromkeys([fold(term) for term in terms] + terms)
    return set(list(found)[:MAX_NAME_TERMS])


def name_words_before(name: str) -> set[str]:
    # 0006's rule, for going back to it.
    return set(_terms(name)[:MAX_NAME_TERMS])


# --- writing them: 0006's writer (a migration, so it does not change) ---------------------

# A module name that starts with a digit is imported by name.
_WRITER = import_module("vouch.references.migrations.0006_reindex_name_words")
_reindex, REFUSAL = _WRITER._reindex, _WRITER.REFUSAL


def reindex(apps, schema_editor) -> None:
    _reindex(apps, schema_editor, name_words_now)


def reindex_before(apps, schema_editor) -> None:
    _reindex(apps, schema_editor, name_words_before)


class Migration(migrations.Migration):
    dependencies = [("references", "0007_drop_indexes_covered_by_composites")]

    operations = [migrations.RunPython(reindex, reindex_before, elidable=True)]
