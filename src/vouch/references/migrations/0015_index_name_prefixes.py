"""Candidates already in the database get their name prefixes (the starts, 3 to 12
characters, of each word), so search as you type finds them as well as new ones.

The rule is frozen here: the terms and folding are 0008's (imported: both are fixed
history), the cut into starts is this migration's own, as ``vouch.vault.normalise``
had it when this was written. A later change to the rule comes with a migration of
its own. The digests are keyed with the company's prefix key (``vault.prefixes``), and
names are encrypted under its data key: ``vouch tenants migrate`` runs each company's
migrations inside its company context. A database with no candidates (a region's
template, a new company) needs no key and migrates anywhere. Writing a candidate's
prefixes replaces them, so running this again gives the same rows. Going back drops
the table (0014), so nothing is to be undone here."""

from importlib import import_module

from django.db import migrations

from vouch.core.context import current_or_none
from vouch.vault.prefixes import prefix_digest

# A module name that starts with a digit is imported by name.
_RULE = import_module("vouch.references.migrations.0008_reindex_name_words_folded")
_terms, fold, MAX_NAME_TERMS = _RULE._terms, _RULE.fold, _RULE.MAX_NAME_TERMS

BATCH = 500
MIN_CHARS, MAX_CHARS = 3, 12
REFUSAL = (
    "candidates' name prefixes are keyed with their company's key: migrate company "
    "databases with `vouch tenants migrate`"
)


def name_prefixes(name: str) -> set[str]:
    terms = list(dict.fromkeys(fold(term) for term in _terms(name)))[:MAX_NAME_TERMS]
    return {term[:length] for term in terms for length in range(MIN_CHARS, min(len(term), MAX_CHARS) + 1)}


def backfill(apps, schema_editor) -> None:
    candidate_model = apps.get_model("references", "Candidate")
    prefix_model = apps.get_model("references", "NamePrefix")
    alias = schema_editor.connection.alias
    candidates = candidate_model.objects.using(alias).order_by("pk").only("pk", "name")
    if not candidates.exists():
        return
    if current_or_none() is None:
        raise RuntimeError(REFUSAL)

    def write(batch) -> None:
        prefix_model.objects.using(alias).filter(candidate_id__in=[c.pk for c in batch]).delete()
        prefix_model.objects.using(alias).bulk_create(
            [
                prefix_model(candidate_id=candidate.pk, digest=digest)
                for candidate in batch
                for digest in sorted({prefix_digest(prefix) for prefix in name_prefixes(candidate.name)})
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


class Migration(migrations.Migration):
    dependencies = [("references", "0014_name_prefixes")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
