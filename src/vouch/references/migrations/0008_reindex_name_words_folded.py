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

from django.db import migrations

BATCH = 500
REFUSAL = (
    "candidates' name search terms are blind indexes under their company's key: migrate company "
    "databases with `vouch tenants migrate`"
)

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
    pieces, piece = [], []
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


# --- writing them ---------------------------------------------------------------------


def _reindex(apps, schema_editor, words) -> None:
    candidate_model = apps.get_model("references", "Candidate")
    term_model = apps.get_model("references", "SearchTerm")
    alias = schema_editor.connection.alias
    candidates = candidate_model.objects.using(alias).order_by("pk").only("pk", "name")
    if not candidates.exists():
        return
    from vouch.tenancy.context import current_or_none
    from vouch.vault.fields import blind_index

    if current_or_none() is None:
        raise RuntimeError(REFUSAL)

    def write(batch) -> None:
        term_model.objects.using(alias).filter(candidate_id__in=[c.pk for c in batch]).delete()
        term_model.objects.using(alias).bulk_create(
            [
                term_model(candidate_id=candidate.pk, term=blind_index("name", word))
                for candidate in batch
                for word in sorted(words(candidate.name))
            ]
        )

    batch = []
    for candidate in candidates.iterator(chunk_size=BATCH):
        batch.append(candidate)
        if len(batch) >= BATCH:
            write(batch)
            batch = []
    if batch:
        write(batch)


def reindex(apps, schema_editor) -> None:
    _reindex(apps, schema_editor, name_words_now)


def reindex_before(apps, schema_editor) -> None:
    _reindex(apps, schema_editor, name_words_before)


class Migration(migrations.Migration):
    dependencies = [("references", "0007_drop_indexes_covered_by_composites")]

    operations = [migrations.RunPython(reindex, reindex_before, elidable=True)]
