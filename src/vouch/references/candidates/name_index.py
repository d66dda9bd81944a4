"""Finding candidates by name with names encrypted at rest: the index rows kept in step
with each name, and the lookup both lists (Candidates, and the requests dashboard) use.

Two kinds of rows, both keyed digests in the company's database:
- ``SearchTerm``: each whole word of the name and its parts (``normalise.name_words``),
  under the blind-index key;
- ``NamePrefix``: the starts of 3 to 12 characters of each word (``normalise.name_prefixes``),
  under the company's prefix key (``vault.prefixes``).

A typed word of 3 characters or more is looked up as the start of a name word ("Mar"
finds "Maria" and "Marek"); a shorter one as a whole word ("Li" finds "Li Wei", not
"Lina"); a candidate matches when every typed word does. Nothing is decrypted to
search: the query is one indexed lookup per kind of row, a subquery of candidate ids."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections
from django.db.models import Count, Model, QuerySet

from vouch.core.db import ComposedSQL
from vouch.references.models import Candidate
from vouch.references.request_models import NamePrefix, SearchTerm
from vouch.tenancy import company_db
from vouch.vault.fields import blind_index
from vouch.vault.normalise import PREFIX_MIN_CHARS, name_words, query_prefix
from vouch.vault.prefixes import name_prefix_digests, prefix_digest

# More words than a name has would only ever find nobody, at the cost of more hashing.
MAX_SEARCH_WORDS = 8


def index_names(candidates: Iterable[Candidate], *, new: bool = False) -> None:
    """Write the search rows of these candidates' names, replacing any they had: after
    every write of a name (adding, editing, the candidate's own correction, bulk
    requests). Deleting a candidate deletes their rows (the cascade). ``new``: candidates
    created in this transaction, who cannot have rows yet (nothing to delete first)."""
    candidates = list(candidates)
    if not new:
        ids = [candidate.pk for candidate in candidates]
        SearchTerm.objects.filter(candidate_id__in=ids).delete()
        NamePrefix.objects.filter(candidate_id__in=ids).delete()
    terms = [
        (candidate.pk, _word_digest(word)) for candidate in candidates for word in sorted(name_words(candidate.name))
    ]
    prefixes = [
        (candidate.pk, digest) for candidate in candidates for digest in sorted(name_prefix_digests(candidate.name))
    ]
    alias = company_db.alias()
    connection = connections[alias]
    pk = Candidate._meta.pk
    for statement, rows in ((_INSERT_TERM, terms), (_INSERT_PREFIX, prefixes)):
        if rows:
            statement.executemany(
                [(pk.get_db_prep_value(candidate_id, connection), digest) for candidate_id, digest in rows], using=alias
            )


# The rows of a name, written in one driver call per table (vouch.core.db): bulk_create
# built a model instance per row and compiled its INSERT on every name written.
_INSERT_TERM = ComposedSQL(
    lambda n: (
        f"INSERT INTO {n.table(SearchTerm)} ({n.columns(SearchTerm, 'candidate', 'term')}) VALUES (%s, %s)"  # noqa: S608 - identifiers from the model
    )
)
_INSERT_PREFIX = ComposedSQL(
    lambda n: (
        f"INSERT INTO {n.table(NamePrefix)} ({n.columns(NamePrefix, 'candidate', 'digest')}) VALUES (%s, %s)"  # noqa: S608 - identifiers from the model
    )
)


def _word_digest(word: str) -> str:
    """The word index's digest of a (never empty) name word."""
    digest = blind_index("name", word)
    if digest is None:
        raise ValueError("a name word is never empty")
    return digest


def index_name(candidate: Candidate, *, new: bool = False) -> None:
    """Keep one candidate's search rows in step with their name (``new``: see index_names)."""
    index_names([candidate], new=new)


def has_short_word(query: str) -> bool:
    """Whether a typed name has a word too short to be looked up as a start (the page
    says such words must be whole)."""
    return any(len(word) < PREFIX_MIN_CHARS for word in name_words(query, query=True))


def _every(model: type[Model], column: str, digests: set[str]) -> QuerySet:
    """The ids of candidates with a row for every one of ``digests``."""
    if len(digests) == 1:
        return model._default_manager.filter(**{column: next(iter(digests))}).values("candidate_id")
    # A candidate has each digest at most once (a unique constraint), so counting the
    # rows that matched says whether every one did.
    return (
        model._default_manager.filter(**{f"{column}__in": digests})
        .values("candidate_id")
        .annotate(matched=Count(column))
        .filter(matched=len(digests))
        .values("candidate_id")
    )


def candidates_named(query: str) -> QuerySet | None:
    """A subquery of the ids of the candidates whose name the typed words find (each
    word the start of a name word, or for a word under 3 characters a whole one);
    None when the query cannot find anyone (no word, or more than MAX_SEARCH_WORDS)."""
    words = name_words(query, query=True)
    if not words or len(words) > MAX_SEARCH_WORDS:
        return None
    prefixes = {prefix_digest(start) for word in words if (start := query_prefix(word))}
    whole = {_word_digest(word) for word in words if query_prefix(word) is None}
    found = [
        _every(model, column, digests)
        for model, column, digests in (
            (NamePrefix, "digest", prefixes),
            (SearchTerm, "term", whole),
        )
        if digests
    ]
    if len(found) == 1:
        return found[0]
    return Candidate.objects.filter(pk__in=found[0]).filter(pk__in=found[1]).values("pk")
