"""Candidates' name search terms are written again with the parts of hyphenated and
apostrophe words ("Mary-Jane O'Brien" is also found by "Jane", "OBrien", "brien").

The terms are blind indexes under the company's index key, and names are encrypted
under its data key: ``vouch tenants migrate`` runs each company's migrations inside
its company context. A database with no candidates (a region's template, a new
company) needs no key and migrates anywhere. Writing a candidate's terms replaces
them, so running this again gives the same rows."""

from django.db import migrations

from vouch.core.context import current_or_none
from vouch.vault.fields import blind_index
from vouch.vault.normalise import NORMALISERS, name_words

BATCH = 500
REFUSAL = (
    "candidates' name search terms are blind indexes under their company's key: migrate company "
    "databases with `vouch tenants migrate`"
)


def name_words_now(name: str) -> set[str]:
    # The search's own rule, not a copy: the terms must be the ones today's queries look up.
    return name_words(name)


def name_words_before(name: str) -> set[str]:
    # The rule this migration replaces (whitespace words only), for going back to 0005.
    return set(NORMALISERS["name"](name).split())


def _reindex(apps, schema_editor, words) -> None:
    candidate_model = apps.get_model("references", "Candidate")
    term_model = apps.get_model("references", "SearchTerm")
    alias = schema_editor.connection.alias
    candidates = candidate_model.objects.using(alias).order_by("pk").only("pk", "name")
    if not candidates.exists():
        return
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
    dependencies = [("references", "0005_request_list_indexes")]

    operations = [migrations.RunPython(reindex, reindex_before, elidable=True)]
