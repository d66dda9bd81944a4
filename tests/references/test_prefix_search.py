"""Search as recruiters type: "Mar" finds "Maria" and "Marek" on the Candidates list and
the requests list, through the keyed prefix index only (``NamePrefix``; the rule and
digests are tests/vault/test_prefixes.py). The index holds no name, matches nothing
across companies, follows every write and erasure of a name, and is written for
existing candidates by migration 0015 (``vouch tenants migrate``). Both pages answer
htmx with their results alone and a plain GET with the whole page. Runs on both paths
(SQLite files; a PostgreSQL database per company)."""

from __future__ import annotations

import hashlib
from importlib import import_module

import pytest
from django.db import connections as django_connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from tests.accounts.helpers import fast_company
from tests.references.helpers import add_candidate
from tests.references.name_search_helpers import applied, refused_outside_a_company_context, requests_named, run_again
from tests.references.workflow import make_request
from tests.vault.attack import company_database_bytes, scan, unique
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.candidates import services
from vouch.references.models import Candidate
from vouch.references.privacy.candidate_data import erase_candidate
from vouch.references.request_models import NamePrefix, WorkflowSettings
from vouch.tenancy import connections
from vouch.tenancy.operations import migrate
from vouch.vault.normalise import name_prefixes
from vouch.vault.prefixes import name_prefix_digests, prefix_digest

from .test_request_pages import listed

pytestmark = pytest.mark.django_db

BACKFILL_NODE = ("references", "0015_index_name_prefixes")
BACKFILL = import_module("vouch.references.migrations.0015_index_name_prefixes")
BEFORE = ("references", "0014_name_prefixes")
HTMX_CANDIDATES = {"HX-Request": "true", "HX-Target": "candidate-results"}
HTMX_REQUESTS = {"HX-Request": "true", "HX-Target": "request-results"}

PEOPLE = {
    "maria": "Maria Kowalska",
    "marek": "Marek Nowak",
    "omar": "Omar Haddad",  # "mar" inside a word, not at its start
    "mj": "Mary-Jane O'Brien",
    "jose": "José Márquez",
}


@pytest.fixture
def people(company):
    """The candidates, added on the Candidates pages' service: key -> candidate id."""
    return {key: str(add_candidate(company, name, f"{key}@example.org").pk) for key, name in PEOPLE.items()}


def candidate_ids(response) -> set[str]:
    assert response.status_code == 200, response.content.decode()[:500]
    text = response.content.decode()
    return {part.split('"')[0] for part in text.split('<tr id="candidate-')[1:]}


def digests_of(candidate_id) -> set[str]:
    return set(NamePrefix.objects.filter(candidate_id=candidate_id).values_list("digest", flat=True))


# --- the Candidates list -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Mar", {"maria", "marek", "mj", "jose"}),  # Márquez, without its accent
        ("mari", {"maria"}),
        ("MARE", {"marek"}),
        ("Már", {"maria", "marek", "mj", "jose"}),
        ("marq", {"jose"}),
        ("mar now", {"marek"}),  # every typed word must start a word of the name
        ("mar kow", {"maria"}),
        ("Mary-Ja", set()),  # "ja" is under 3 letters: a whole word only
        ("Mary-Jan", {"mj"}),
        ("O'Bri", {"mj"}),
        ("obrien mar", {"mj"}),
        ("had", {"omar"}),
        ("ma", set()),  # under 3 letters: whole words only, and no name is "ma"
        ("arek", set()),  # not the start of a word
        ("Maria Kowalska", {"maria"}),  # whole words still find
        ("maria@example.org", {"maria"}),  # so does a whole email address
        ("mari@example.org", set()),  # not a part of one
    ],
)
def test_the_candidates_list_finds_names_by_the_starts_of_their_words(client, members, people, query, expected):
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("candidates"), {"q": query})
    assert candidate_ids(response) == {people[key] for key in expected}


def test_a_plain_get_is_the_whole_page_and_htmx_gets_the_results_alone(client, members, people):
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("candidates"), {"q": "Mar"})
    text = page.content.decode()
    # No JavaScript: the whole page, with the form (typed text kept) and its results.
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert 'role="search"' in text and 'value="Mar"' in text and 'id="candidate-results"' in text
    assert 'hx-trigger="keyup changed delay:300ms from:#id_q' in text
    assert "4 candidates match “Mar”." in text
    assert candidate_ids(page) == {people[k] for k in ("maria", "marek", "mj", "jose")}

    part = client.get(reverse("candidates"), {"q": "Mar"}, headers=HTMX_CANDIDATES)
    fragment = part.content.decode()
    assert "<html" not in fragment and 'role="search"' not in fragment and "<h1>" not in fragment
    assert candidate_ids(part) == candidate_ids(page)
    # The screen-reader status beside the results is updated out of band.
    assert '<span id="candidate-search-status" hx-swap-oob="innerHTML">4 candidates match “Mar”.' in fragment
    for response in (page, part):
        assert {"hx-request", "hx-target"} <= {v.strip().lower() for v in response["Vary"].split(",")}

    # htmx restoring a page from its history asks for the whole page.
    restored = client.get(
        reverse("candidates"), {"q": "Mar"}, headers={**HTMX_CANDIDATES, "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restored.content.decode()
    # Another element's request gets the whole page too, never a fragment it did not ask for.
    other = client.get(reverse("candidates"), {"q": "Mar"}, headers={"HX-Request": "true", "HX-Target": "main"})
    assert "<html" in other.content.decode()


def test_nobody_found_says_so_in_the_page_and_in_the_fragment(client, members, people):
    client.force_login(members[Role.VIEWER].user)
    for headers in ({}, HTMX_CANDIDATES):
        response = client.get(reverse("candidates"), {"q": "xyz"}, headers=headers)
        assert response.status_code == 200 and not candidate_ids(response)
        assert 'No candidates match “xyz”. <a href="/candidates/">Show all candidates</a>' in response.content.decode()
    hostile = client.get(reverse("candidates"), {"q": "<script>alert(1)</script>"}, headers=HTMX_CANDIDATES)
    assert hostile.status_code == 200 and b"<script>alert" not in hostile.content
    assert b"&lt;script&gt;" in hostile.content


@pytest.mark.parametrize("query", ["x" * 300, "Mar\x00"])
def test_an_invalid_search_is_a_400_in_the_page_and_in_the_fragment(client, members, people, query):
    client.force_login(members[Role.VIEWER].user)
    for headers in ({}, HTMX_CANDIDATES):
        response = client.get(reverse("candidates"), {"q": query}, headers=headers)
        assert response.status_code == 400 and b'id="invalid-search"' in response.content
        assert ("<html" in response.content.decode()) == (not headers)


def test_many_words_find_nobody_without_an_error(client, members, people):
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("candidates"), {"q": " ".join(["mar"] * 3 + [f"w{i}abc" for i in range(9)])})
    assert response.status_code == 200 and not candidate_ids(response)


def test_a_search_keeps_its_pages(client, members, company, monkeypatch):
    monkeypatch.setattr(services, "PER_PAGE", 2)
    with company_context(company):
        for i in range(5):
            services.create_candidate(f"Marta Lis {i}", f"marta{i}@example.org")
        services.create_candidate("Zofia Lis", "zofia@example.org")
    client.force_login(members[Role.VIEWER].user)
    first = client.get(reverse("candidates"), {"q": "mart"}, headers=HTMX_CANDIDATES)
    text = first.content.decode()
    assert len(candidate_ids(first)) == 2 and "Page 1 of 3 · 5 candidates" in text
    assert 'href="?q=mart&amp;page=2"' in text
    seen = candidate_ids(first)
    for number in ("2", "3"):
        page = client.get(reverse("candidates"), {"q": "mart", "page": number})
        assert not candidate_ids(page) & seen
        seen |= candidate_ids(page)
    assert len(seen) == 5


def test_a_recruiter_limited_to_their_requests_finds_only_their_candidates(client, members, company):
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    own, _ = make_request(company, recruiter, name="Marina Own", email="own@example.org")
    make_request(company, admin, name="Marina Other", email="other@example.org")
    with company_context(company):
        WorkflowSettings.objects.update_or_create(pk=1, defaults={"recruiters_see_all": False})
    client.force_login(recruiter)
    assert candidate_ids(client.get(reverse("candidates"), {"q": "Mari"})) == {str(own.candidate_id)}
    assert listed(client.get(reverse("requests"), {"q": "Mari"})) == [str(own.pk)]


# --- the requests list -------------------------------------------------------------------


def test_the_requests_list_finds_by_starts_in_the_page_and_the_fragment(client, members, company):
    named = requests_named(company, members, {"maria": "Maria Kowalska", "marek": "Marek Nowak", "omar": "Omar Ali"})
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("requests"), {"q": "Mar"})
    assert set(listed(page)) == {named["maria"], named["marek"]}
    text = page.content.decode()
    assert "<html" in text and 'id="request-results"' in text and 'hx-target="#request-results"' in text
    part = client.get(reverse("requests"), {"q": "Mar", "status": ""}, headers=HTMX_REQUESTS)
    fragment = part.content.decode()
    assert set(listed(part)) == set(listed(page)) and "<html" not in fragment and "<h1>" not in fragment
    assert '<span id="request-search-status" hx-swap-oob="innerHTML">2 requests match “Mar”.' in fragment
    # Filters apply together with the search, and a filter error comes back in the fragment.
    assert (
        set(listed(client.get(reverse("requests"), {"q": "Mar", "created_to": "2000-01-01"}, headers=HTMX_REQUESTS)))
        == set()
    )
    bad = client.get(reverse("requests"), {"q": "Mar", "created_from": "2026-13-45"}, headers=HTMX_REQUESTS)
    assert bad.status_code == 400 and b'id="invalid-filters"' in bad.content and b"<html" not in bad.content
    short = client.get(reverse("requests"), {"q": "Ma"}, headers=HTMX_REQUESTS)
    assert listed(short) == [] and b"words under 3 letters must be whole words" in short.content


# --- what the index holds ----------------------------------------------------------------


def test_the_index_holds_no_name_only_keyed_digests(company):
    surname = unique("Quasthoff")
    name = f"Ottoline {surname}"
    with company_context(company) as context:
        candidate = services.create_candidate(name, f"{surname.lower()}@example.org")
        digests = digests_of(candidate.pk)
        assert digests == name_prefix_digests(name) and len(digests) == len(name_prefixes(name))
        with django_connections[context.alias].cursor() as cursor:
            cursor.execute("SELECT digest FROM references_nameprefix")
            stored = " ".join(row[0] for row in cursor.fetchall())
    # Neither a start of the name nor an unkeyed hash of one (which anyone could compute).
    for start in name_prefixes(name):
        assert start not in stored
        assert hashlib.sha256(start.encode()).hexdigest()[:32] not in stored
    # The raw bytes of the whole company database (SQLite file and its WAL, or a
    # pg_dump) hold neither the name nor a start of it long enough to be told from
    # chance (shorter starts are letters any ciphertext may hold).
    distinctive = [name, surname, *(start for start in name_prefixes(name) if len(start) >= 8)]
    assert scan(company_database_bytes(company), distinctive) == []


def test_a_digest_of_one_company_finds_nothing_in_another(client, members, company):
    other = fast_company()
    with company_context(other):
        theirs = services.create_candidate("Maria Kowalska", "maria@example.org")
        their_mar = prefix_digest("mar")
    with company_context(company):
        ours = services.create_candidate("Maria Kowalska", "maria@example.org")
        our_mar = prefix_digest("mar")
        assert their_mar != our_mar
        # The other company's digest of "mar", looked up in this company's index.
        assert not NamePrefix.objects.filter(digest=their_mar).exists()
        assert list(NamePrefix.objects.filter(digest=our_mar).values_list("candidate_id", flat=True)) == [ours.pk]
        assert not digests_of(ours.pk) & {prefix_digest(s, company_id=other.pk) for s in name_prefixes("Maria")}
    client.force_login(members[Role.VIEWER].user)
    assert candidate_ids(client.get(reverse("candidates"), {"q": "Mar"})) == {str(ours.pk)}
    with company_context(other):
        assert digests_of(theirs.pk) == name_prefix_digests("Maria Kowalska")


# --- kept in step ------------------------------------------------------------------------


def test_renaming_replaces_the_starts(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    candidate = add_candidate(company, "Maria Kowalska", "maria@example.org")
    response = client.post(
        reverse("candidate_edit", args=[candidate.pk]), {"name": "Zofia Kowalska", "email": "maria@example.org"}
    )
    assert response.status_code == 302
    assert candidate_ids(client.get(reverse("candidates"), {"q": "Mar"})) == set()
    assert candidate_ids(client.get(reverse("candidates"), {"q": "Zof"})) == {str(candidate.pk)}
    with company_context(company):
        assert digests_of(candidate.pk) == name_prefix_digests("Zofia Kowalska")


def test_the_candidate_correcting_their_name_through_their_link_is_found_by_it(client, members, company):
    reference_request, token = make_request(company, members[Role.RECRUITER].user, name="Casey Candidate")
    response = client.post(f"/c/{token}/details/", {"name": "Marisol Candidate", "email": "casey@example.org"})
    assert response.status_code == 302
    client.force_login(members[Role.VIEWER].user)
    assert listed(client.get(reverse("requests"), {"q": "maris"})) == [str(reference_request.pk)]
    assert listed(client.get(reverse("requests"), {"q": "cas"})) == []


def test_erasure_and_deletion_remove_the_index_rows(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, name="Maria Kowalska")
    with company_context(company):
        erased = reference_request.candidate
        deleted = services.create_candidate("Marek Nowak", "marek@example.org")
        kept = services.create_candidate("Marta Lis", "marta@example.org")
        assert digests_of(erased.pk) and digests_of(deleted.pk)
        erase_candidate(Candidate.objects.get(pk=erased.pk))
        services.delete_candidate(Candidate.objects.get(pk=deleted.pk))
        assert not NamePrefix.objects.filter(candidate_id__in=[erased.pk, deleted.pk]).exists()
        # Nothing is left for the erased name's starts, and the others' rows are untouched.
        assert not NamePrefix.objects.filter(
            digest__in=name_prefix_digests("Maria Kowalska") - digests_of(kept.pk)
        ).exists()
        assert set(NamePrefix.objects.values_list("candidate_id", flat=True)) == {kept.pk}


# --- migration 0015: candidates from before the index ---------------------------------------


def make_unindexed_company():
    """A company taken back to references 0014 (no prefixes yet): (company, {id: name})."""
    company = fast_company()
    names = {}
    with company_context(company) as context:
        for i, name in enumerate(PEOPLE.values()):
            names[services.create_candidate(name, f"old{i}@example.org").pk] = name
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        NamePrefix.objects.all().delete()
        assert ".".join(BACKFILL_NODE) not in applied(alias)
    return company, names


def test_tenants_migrate_writes_the_starts_of_existing_candidates():
    company, names = make_unindexed_company()
    result = migrate.migrate_one(str(company.pk), company.name, company.region)
    assert (result.outcome, result.reason) == (migrate.MIGRATED, "") and ".".join(BACKFILL_NODE) in result.applied
    with company_context(company):
        for pk, name in names.items():
            assert digests_of(pk) == name_prefix_digests(name), name
        mar = set(NamePrefix.objects.filter(digest=prefix_digest("mar")).values_list("candidate_id", flat=True))
        assert mar == {pk for pk, name in names.items() if name.startswith(("Mar", "José"))}
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.CURRENT


def test_the_backfill_writes_todays_rule_and_the_same_rows_when_run_again():
    samples = [
        *PEOPLE.values(),
        "Brian O’Neill-Smith",
        "欧阳娜娜 张伟",
        "Wolfeschlegelsteinhausenbergerdorff",
        " ".join(f"é{i}-ø{i}x" for i in range(40)),
    ]
    for name in samples:
        assert BACKFILL.name_prefixes(name) == name_prefixes(name), name
    company, names = make_unindexed_company()
    assert migrate.migrate_one(str(company.pk), company.name, company.region).outcome == migrate.MIGRATED
    with company_context(company):
        first = set(NamePrefix.objects.values_list("candidate_id", "digest"))
    run_again(company, BACKFILL_NODE, BACKFILL.backfill)
    with company_context(company):
        assert set(NamePrefix.objects.values_list("candidate_id", "digest")) == first
        assert NamePrefix.objects.count() == len(first) == sum(len(name_prefixes(n)) for n in names.values())


def test_the_backfill_outside_a_company_context_is_refused_and_changes_nothing():
    company, _ = make_unindexed_company()
    refused_outside_a_company_context(company, BACKFILL.REFUSAL, ".".join(BACKFILL_NODE))
    with company_context(company):
        assert not NamePrefix.objects.exists()
