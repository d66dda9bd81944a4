"""Finding candidates by name on the requests dashboard when names have hyphens and
apostrophes: "Mary-Jane O'Brien" is found by "Jane", "OBrien" or "mary jane", through
blind indexes only. Every way a candidate is made or renamed keeps the index in step,
and migration 0006 re-indexes candidates indexed the old way (whitespace words only).
Runs on both paths (SQLite files; a PostgreSQL database per company)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from importlib import import_module

import pytest
from django.db import connections as django_connections
from django.db.migrations.executor import MigrationExecutor
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company
from tests.references.name_search_helpers import (
    applied,
    found,
    refused_outside_a_company_context,
    requests_named,
    run_again,
    stored_terms,
)
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.core.context import alias_for, company_context
from vouch.references.candidates import services
from vouch.references.models import Candidate
from vouch.references.request_models import SearchTerm
from vouch.tenancy import connections
from vouch.tenancy.operations import migrate
from vouch.vault.fields import blind_index
from vouch.vault.normalise import MAX_NAME_TERMS, name_words

pytestmark = pytest.mark.django_db

BEFORE = ("references", "0005_request_list_indexes")
REINDEX_NODE = ("references", "0006_reindex_name_words")
REINDEXING = ".".join(REINDEX_NODE)
REINDEX = import_module("vouch.references.migrations.0006_reindex_name_words")

NAMES = {
    "mj": "Mary-Jane O'Brien",
    "js": "Jane Smith",
    "bo": "Brian O’Neill-Smith",  # a typographic apostrophe
}


@pytest.fixture
def named(company, members):
    return requests_named(company, members, NAMES)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # The brief's cases: each finds "Mary-Jane O'Brien".
        ("Mary-Jane", {"mj"}),
        ("mary jane", {"mj"}),
        ("Jane", {"mj", "js"}),
        ("O'Brien", {"mj"}),
        ("OBrien", {"mj"}),
        ("brien", {"mj"}),
        # Any apostrophe, any case, the whole name, in any order.
        ("o’brien", {"mj"}),
        ("MARY-JANE O'BRIEN", {"mj"}),
        ("obrien maryjane", {"mj"}),
        ("jane mary", {"mj"}),
        ("Mary", {"mj"}),
        ("Neill", {"bo"}),
        ("O'Neill-Smith", {"bo"}),
        ("ONeill Smith", {"bo"}),
        ("oneillsmith", {"bo"}),
        ("smith", {"js", "bo"}),
        ("Smith, Jane", {"js"}),  # the comma separates, as a space does
        # A typed word of 3 letters or more finds the words it starts (search as you
        # type: tests/references/test_prefix_search.py); every typed word must match.
        ("Mar", {"mj"}),
        ("Bri", {"mj", "bo"}),
        ("Jan", {"mj", "js"}),
        ("O'Bri", {"mj"}),
        ("maryjan", {"mj"}),
        ("Mary-Janet", set()),
        ("Mary-Jane Smith", set()),
        ("Jane O'Neill", set()),
        ("-", set()),
        ("'", set()),
    ],
)
def test_the_dashboard_finds_names_by_their_words_and_parts(client, members, named, query, expected):
    client.force_login(members[Role.VIEWER].user)
    assert found(client, query) == {named[key] for key in expected}


def test_a_punctuated_query_costs_at_most_its_pieces_and_stays_within_the_word_bound(client, members, named):
    # Nine pieces: over MAX_SEARCH_WORDS, so nobody, as for nine plain words.
    client.force_login(members[Role.VIEWER].user)
    assert found(client, "a-b-c-d-e-f-g-h-i") == set()
    assert name_words("Mary-Jane O'Brien", query=True) == {"mary", "jane", "obrien"}
    assert name_words("O’Brien", query=True) == name_words("OBrien", query=True) == {"obrien"}


def test_the_stored_terms_are_keyed_hashes_and_no_word_is_in_the_database(company, named):
    with company_context(company) as context:
        candidate = Candidate.objects.get(email_index=blind_index("email", "mj@example.org"))
        words = name_words(candidate.name)
        assert words == {"mary", "jane", "maryjane", "o", "brien", "obrien"}
        terms = set(SearchTerm.objects.filter(candidate=candidate).values_list("term", flat=True))
        assert terms == {blind_index("name", word) for word in words}
        with django_connections[context.alias].cursor() as cursor:
            cursor.execute("SELECT term FROM references_searchterm")
            stored = " ".join(row[0] for row in cursor.fetchall())
    # Neither a word nor an unkeyed hash of one (which anyone could compute from a guess).
    for word in words | {"mary-jane", "o'brien"}:
        assert word not in stored
        assert hashlib.sha256(word.encode()).hexdigest()[:32] not in stored
        assert hashlib.sha256(b"name\x00" + word.encode()).hexdigest()[:32] not in stored
    # Keyed per company: another company's terms for the same name are different.
    other = fast_company()
    with company_context(other):
        assert not terms & {blind_index("name", word) for word in words}


def test_the_search_sends_no_word_of_the_query_to_the_database(client, members, company, named):
    from django.test.utils import CaptureQueriesContext

    client.force_login(members[Role.VIEWER].user)
    with company_context(company) as ctx, CaptureQueriesContext(django_connections[ctx.alias]) as queries:
        assert found(client, "Mary-Jane O'Brien") == {named["mj"]}
    sql = " ".join(str(q["sql"]) for q in queries.captured_queries).casefold()
    assert "references_nameprefix" in sql  # words of 3 letters or more: looked up as starts
    assert not [word for word in ("mary", "jane", "brien") if word in sql]


def test_a_candidate_renamed_through_their_link_is_indexed_again(client, members, company):
    reference_request, token = make_request(company, members[Role.RECRUITER].user, name="Casey Candidate")
    response = client.post(f"/c/{token}/details/", {"name": "Casey Smith-Jones", "email": "casey@example.org"})
    assert response.status_code == 302
    client.force_login(members[Role.VIEWER].user)
    assert found(client, "Jones") == {str(reference_request.pk)}
    assert found(client, "smith-jones casey") == {str(reference_request.pk)}
    assert found(client, "Candidate") == set()  # the old name's word is gone
    with company_context(company):
        assert SearchTerm.objects.filter(candidate=reference_request.candidate).count() == len(
            name_words("Casey Smith-Jones")
        )


def test_a_candidate_added_and_renamed_on_the_candidates_pages_is_found(client, members, company):
    """A candidate added under Candidates first, then asked for references: the request
    reuses the candidate (same email), so their name must already be indexed."""
    client.force_login(members[Role.RECRUITER].user)
    added = client.post(reverse("candidate_new"), {"name": "Siobhán Ní-Bhriain", "email": "sb@example.org"})
    assert added.status_code == 302
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, name="Ignored", email="sb@example.org")
    assert found(client, "Bhriain") == {str(reference_request.pk)}
    assert found(client, "Ignored") == set()

    edited = client.post(
        reverse("candidate_edit", args=[reference_request.candidate_id]),
        {"name": "Siobhán D'Arcy", "email": "sb@example.org"},
    )
    assert edited.status_code == 302
    assert found(client, "Darcy siobhán") == {str(reference_request.pk)}
    assert found(client, "Bhriain") == set()
    # Changing something else leaves the terms as they are.
    with company_context(company):
        before = set(SearchTerm.objects.values_list("id", "term"))
        services.update_candidate(Candidate.objects.get(pk=reference_request.candidate_id), phone="07700 900555")
        assert set(SearchTerm.objects.values_list("id", "term")) == before


def test_bulk_requests_index_the_names_they_create(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    data = {
        "step": "preview",
        "questionnaire": "builtin:people-manager",
        "referees_required": "2",
        "deadline": (timezone.now() + timedelta(days=20)).date().isoformat(),
        "csv_text": "name,email,phone,role\nAnne-Marie D'Souza,am@example.com,,Analyst\nLee Jo,lee@example.com,,Chef\n",
    }
    page = client.post(reverse("request_bulk"), data)
    assert page.status_code == 200
    payload = page.content.decode().split('name="payload" value="')[1].split('"')[0]
    with TestCase.captureOnCommitCallbacks(execute=True):
        done = client.post(reverse("request_bulk"), {"step": "confirm", "payload": payload})
    assert done.status_code == 302
    with company_context(company):
        anne = str(Candidate.objects.get(email_index=blind_index("email", "am@example.com")).requests.get().pk)
    for query in ("Marie", "dsouza", "Anne-Marie D'Souza", "anne marie souza"):
        assert found(client, query) == {anne}, query


def test_a_name_gives_at_most_max_name_terms_whole_words_first():
    name = " ".join(f"w{i}-x{i}" for i in range(40))
    words = name_words(name)
    assert len(words) == MAX_NAME_TERMS
    assert {f"w{i}x{i}" for i in range(40)} <= words  # every whole word is kept


# --- Migration 0006: candidates indexed the old way ------------------------------------


def old_style_terms(name: str) -> set[str]:
    """The terms the search used to write: the name's whitespace words as they are."""
    return {blind_index("name", word) for word in name.casefold().split()}


def make_old_style_company():
    """A company at references 0005 whose candidates carry old-style terms only:
    (company, {candidate id: name})."""
    company = fast_company()
    names = {}
    with company_context(company) as context:
        for i, name in enumerate((*NAMES.values(), "Plain Name")):
            names[services.create_candidate(name, f"old{i}@example.org").pk] = name
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        SearchTerm.objects.all().delete()
        SearchTerm.objects.bulk_create(
            [SearchTerm(candidate_id=pk, term=term) for pk, name in names.items() for term in old_style_terms(name)]
        )
        assert REINDEXING not in applied(alias)
        # Control: the old way, "Jane" finds "Jane Smith" but not "Mary-Jane O'Brien".
        assert set(
            SearchTerm.objects.filter(term=blind_index("name", "jane")).values_list("candidate_id", flat=True)
        ) == {pk for pk, name in names.items() if name.startswith("Jane")}
    return company, names


def test_tenants_migrate_reindexes_old_style_candidates():
    company, names = make_old_style_company()
    result = migrate.migrate_one(str(company.pk), company.name, company.region)
    assert (result.outcome, result.reason) == (migrate.MIGRATED, "") and result.applied[0] == REINDEXING
    with company_context(company) as context:
        assert REINDEXING in applied(connections.ensure_alias(context))
        for pk, name in names.items():
            assert stored_terms(pk) == {blind_index("name", word) for word in name_words(name)}, name
        jane = set(SearchTerm.objects.filter(term=blind_index("name", "jane")).values_list("candidate_id", flat=True))
        assert jane == {pk for pk, name in names.items() if "Jane" in name}
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.CURRENT


def test_the_reindexing_migration_gives_the_same_rows_when_run_again():
    company, names = make_old_style_company()
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.MIGRATED
    with company_context(company):
        first = set(SearchTerm.objects.values_list("candidate_id", "term"))
    run_again(company, REINDEX_NODE, REINDEX.reindex)
    with company_context(company):
        assert set(SearchTerm.objects.values_list("candidate_id", "term")) == first
        assert SearchTerm.objects.count() == len(first) == sum(len(name_words(n)) for n in names.values())


def test_going_back_to_0005_restores_the_old_terms():
    company, names = make_old_style_company()
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.MIGRATED
    with company_context(company) as context:
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        for pk, name in names.items():
            assert stored_terms(pk) == old_style_terms(name), name


def test_reindexing_outside_a_company_context_is_refused_and_changes_nothing():
    company, names = make_old_style_company()
    with company_context(company):
        before = set(SearchTerm.objects.values_list("candidate_id", "term"))
    refused_outside_a_company_context(company, REINDEX.REFUSAL, REINDEXING)
    with company_context(company):
        assert set(SearchTerm.objects.values_list("candidate_id", "term")) == before


def test_a_database_without_candidates_migrates_outside_a_company_context():
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
