"""Finding candidates by name with or without accents: "Jose", "jose" and "José" find
"José Müller", "Lukasz" finds "Łukasz", "Soren" "Søren", through blind indexes only.
Names in other scripts match themselves exactly as before. Migration 0008 re-indexes
candidates indexed before accents were folded, and going back restores 0006's terms.
Runs on both paths (SQLite files; a PostgreSQL database per company)."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.db import connections as django_connections
from django.db.migrations.executor import MigrationExecutor

from tests.accounts.helpers import fast_company
from tests.references.name_search_helpers import (
    applied,
    found,
    refused_outside_a_company_context,
    requests_named,
    run_again,
    stored_terms,
)
from vouch.accounts.policy import Role
from vouch.core.context import alias_for, company_context
from vouch.references.candidates import services
from vouch.references.request_models import SearchTerm
from vouch.tenancy import connections
from vouch.tenancy.operations import migrate
from vouch.vault.fields import blind_index
from vouch.vault.normalise import MAX_NAME_TERMS, fold, name_words

pytestmark = pytest.mark.django_db

BEFORE = ("references", "0007_drop_indexes_covered_by_composites")
REINDEX_NODE = ("references", "0008_reindex_name_words_folded")
REINDEXING = ".".join(REINDEX_NODE)
REINDEX = import_module("vouch.references.migrations.0008_reindex_name_words_folded")

NAMES = {
    "jm": "José Müller",
    "jo": "Jose Ortega",  # the same first name typed without its accent
    "zo": "Zoë Ångström",
    "lk": "Łukasz Wróbel-Nowak",
    "sk": "Søren Kierkegaard",
    "ad": "Antonín Dvořák",
    "gt": "Guðrún Þórsdóttir",
    "sd": "Straße D'Ávila",
    "zw": "张伟",
    "gp": "Γιώργος Παπαδόπουλος",
    "ii": "Иван Иванов",
    "jn": "Йозеф Новак",
    "rk": "राहुल कुमार",
}

# What each query finds, by key of NAMES.
QUERIES = {
    # The wanted cases: typed with or without accents, in any case.
    "Jose": {"jm", "jo"},
    "jose": {"jm", "jo"},
    "José": {"jm", "jo"},
    "JOSÉ": {"jm", "jo"},
    "Jose\u0301": {"jm", "jo"},  # "José" typed as e and a combining accent
    "Muller": {"jm"},
    "Müller": {"jm"},
    "josé muller": {"jm"},
    "Jose Muller": {"jm"},
    "Zoe": {"zo"},
    "Zoë": {"zo"},
    "angstrom": {"zo"},
    "Lukasz": {"lk"},
    "Łukasz": {"lk"},
    "ŁUKASZ": {"lk"},
    "Wrobel-Nowak": {"lk"},  # parts of a hyphenated word, folded too
    "wrobel": {"lk"},
    "wróbelnowak": {"lk"},
    "Soren": {"sk"},
    "Søren": {"sk"},
    "SØREN": {"sk"},
    "Dvorak": {"ad"},
    "Dvořák": {"ad"},
    "antonin dvorak": {"ad"},
    "Gudrun Thorsdottir": {"gt"},
    "Guðrún": {"gt"},
    "strasse": {"sd"},
    "Davila": {"sd"},
    "D'Avila": {"sd"},
    "avila": {"sd"},
    # Typed starts of 3 letters or more find the words they start, folded too; every
    # word must match; no other transliteration.
    "Jos": {"jo", "jm"},
    "Mull": {"jm"},
    "Müll": {"jm"},
    "Łuk": {"lk"},
    "Jo": set(),  # under 3 letters: whole words only
    "Jose Kierkegaard": set(),
    "Mueller": set(),
    # Other scripts match themselves, as before.
    "张伟": {"zw"},
    "张": set(),
    "Παπαδόπουλος": {"gp"},
    "ΠΑΠΑΔΌΠΟΥΛΟΣ": {"gp"},
    "Παπαδοπουλος": {"gp"},  # Greek is often typed without the tonos
    "γιωργος": {"gp"},
    "Иванов": {"ii"},
    "ИВАН": {"ii"},
    "Ivanov": set(),  # no transliteration between scripts
    "Йозеф": {"jn"},
    "Иозеф": set(),  # й is a letter of its own, not и with an accent
    "कुमार": {"rk"},
    "कमार": set(),  # a Devanagari vowel sign is part of the word
    "राहुल कुमार": {"rk"},
}


@pytest.fixture
def named(company, members):
    return requests_named(company, members, NAMES)


def test_the_dashboard_finds_names_with_or_without_their_accents(client, members, named):
    client.force_login(members[Role.VIEWER].user)
    keys = {request_id: key for key, request_id in named.items()}
    got = {query: {keys[request_id] for request_id in found(client, query)} for query in QUERIES}
    # All queries at once (one set of candidates for them all), each named if wrong.
    assert {query: got[query] for query in QUERIES if got[query] != QUERIES[query]} == {}


def test_the_search_sends_no_word_with_or_without_accents_to_the_database(client, members, company, named):
    from django.test.utils import CaptureQueriesContext

    client.force_login(members[Role.VIEWER].user)
    with company_context(company) as ctx, CaptureQueriesContext(django_connections[ctx.alias]) as queries:
        assert found(client, "José Müller") == {named["jm"]}
    sql = " ".join(str(q["sql"]) for q in queries.captured_queries).casefold()
    assert "references_nameprefix" in sql  # words of 3 letters or more: looked up as starts
    assert not [word for word in ("jos", "müller", "muller") if word in sql]


# --- name_words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("josé", "jose"),
        ("müller", "muller"),
        ("zoë", "zoe"),
        ("łukasz", "lukasz"),
        ("søren", "soren"),
        ("dvořák", "dvorak"),
        ("nguyễn", "nguyen"),
        ("guðrún", "gudrun"),
        ("þórsdóttir", "thorsdottir"),
        ("ærø", "aero"),
        ("œuvray", "oeuvray"),
        ("işık", "isik"),
        ("đorđević", "dordevic"),
        ("παπαδόπουλοσ", "παπαδοπουλοσ"),
        ("张伟", "张伟"),
        ("иванов", "иванов"),
        ("йозеф", "йозеф"),
        ("कुमार", "कुमार"),
        ("q\u0301", "q"),  # a mark with no composed form, after a Latin letter
    ],
)
def test_fold_drops_the_accents_of_latin_and_greek_letters_only(word, folded):
    assert fold(word) == folded


def test_a_name_is_indexed_with_and_without_its_accents_and_a_query_only_without():
    assert name_words("José Müller") == {"josé", "jose", "müller", "muller"}
    assert name_words("José Müller", query=True) == name_words("jose MULLER", query=True) == {"jose", "muller"}
    assert name_words("Łukasz Wróbel-Nowak") == {
        *("łukasz", "wróbelnowak", "wróbel", "nowak"),
        *("lukasz", "wrobelnowak", "wrobel"),
    }
    assert name_words("Straße", query=True) == name_words("STRASSE", query=True) == {"strasse"}


@pytest.mark.parametrize("value", ["张伟", "Иван Иванов", "Йозеф Новак", "राहुल कुमार", "Mary-Jane O'Brien"])
def test_names_without_accents_are_indexed_and_queried_as_before(value):
    """Nothing to fold: the terms are 0006's, and a query's words its pieces as typed."""
    assert name_words(value) == REINDEX.name_words_before(value)
    assert name_words(value, query=True) <= name_words(value)


def test_a_long_accented_name_keeps_every_folded_whole_word_first():
    name = " ".join(f"é{i}-ø{i}" for i in range(40))
    words = name_words(name)
    assert len(words) == MAX_NAME_TERMS
    assert {f"e{i}o{i}" for i in range(40)} <= words  # every whole word is still found
    assert "é0ø0" not in words  # the unfolded forms are cut first
    for i in range(40):
        assert name_words(f"é{i}ø{i}", query=True) <= words


# --- Migration 0008: candidates indexed before accents were folded ----------------------


def terms_of(words: set[str]) -> set[str]:
    return {blind_index("name", word) for word in words}


def make_unfolded_company():
    """A company taken back to references 0007 (0008 run backwards), so its candidates
    carry 0006's terms only: (company, {candidate id: name})."""
    company = fast_company()
    names = {}
    with company_context(company) as context:
        for i, name in enumerate(NAMES.values()):
            names[services.create_candidate(name, f"old{i}@example.org").pk] = name
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        assert REINDEXING not in applied(alias)
    return company, names


def test_going_back_to_0007_restores_the_terms_as_0006_wrote_them():
    company, names = make_unfolded_company()
    with company_context(company):
        by_name = {name: stored_terms(pk) for pk, name in names.items()}
        # 0006's rule, written out: the words as typed, casefolded, and their parts.
        assert by_name["José Müller"] == terms_of({"josé", "müller"})
        assert by_name["Łukasz Wróbel-Nowak"] == terms_of({"łukasz", "wróbelnowak", "wróbel", "nowak"})
        assert by_name["张伟"] == terms_of({"张伟"})
        for name, terms in by_name.items():
            assert terms == terms_of(REINDEX.name_words_before(name)), name
        # Control: before 0008, "jose" finds only the candidate typed without the accent.
        jose = set(SearchTerm.objects.filter(term=blind_index("name", "jose")).values_list("candidate_id", flat=True))
        assert jose == {pk for pk, name in names.items() if name.startswith("Jose ")}


def test_tenants_migrate_reindexes_candidates_with_their_folded_terms():
    company, names = make_unfolded_company()
    result = migrate.migrate_one(str(company.pk), company.name, company.region)
    assert (result.outcome, result.reason) == (migrate.MIGRATED, "") and result.applied[0] == REINDEXING
    with company_context(company) as context:
        assert REINDEXING in applied(connections.ensure_alias(context))
        for pk, name in names.items():
            assert stored_terms(pk) == terms_of(name_words(name)), name
        jose = set(SearchTerm.objects.filter(term=blind_index("name", "jose")).values_list("candidate_id", flat=True))
        assert jose == {pk for pk, name in names.items() if name.casefold().startswith(("jose ", "josé "))}
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.CURRENT


def test_the_migration_writes_todays_rule():
    """0008 holds a frozen copy of the rule; while it is the latest re-indexing, the copy
    must be the rule the search uses (a change to name_words needs a migration of its own)."""
    samples = [*NAMES.values(), "Mary-Jane O'Brien", "Brian O’Neill-Smith", " ".join(f"é{i}-ø{i}" for i in range(40))]
    for name in samples:
        assert REINDEX.name_words_now(name) == name_words(name), name


def test_the_folding_migration_gives_the_same_rows_when_run_again():
    company, names = make_unfolded_company()
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.MIGRATED
    with company_context(company):
        first = set(SearchTerm.objects.values_list("candidate_id", "term"))
    run_again(company, REINDEX_NODE, REINDEX.reindex)
    with company_context(company):
        assert set(SearchTerm.objects.values_list("candidate_id", "term")) == first
        assert SearchTerm.objects.count() == len(first) == sum(len(name_words(n)) for n in names.values())


def test_folding_outside_a_company_context_is_refused_and_changes_nothing():
    company, names = make_unfolded_company()
    with company_context(company):
        before = set(SearchTerm.objects.values_list("candidate_id", "term"))
    refused_outside_a_company_context(company, REINDEX.REFUSAL, REINDEXING)
    with company_context(company):
        assert set(SearchTerm.objects.values_list("candidate_id", "term")) == before


def test_a_database_without_candidates_folds_outside_a_company_context():
    """A region's template and a new company's database have nothing to index."""
    company = fast_company()
    with company_context(company) as context:
        MigrationExecutor(django_connections[connections.ensure_alias(context, admin=True)]).migrate([BEFORE])
    alias = alias_for(company.pk)
    connections.add_alias(alias, connections.database_settings(company.pk, company.region, admin=True))
    try:
        MigrationExecutor(django_connections[alias]).migrate([REINDEX_NODE])
        assert REINDEXING in applied(alias)
    finally:
        connections.release(alias)
