"""Candidates: added through the pages, stored encrypted, found only by exact email or
phone number through their blind indexes, listed a page at a time, per role."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member
from tests.references.helpers import add_candidate, add_file, pdf_bytes
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.context import company_context
from vouch.references.candidates import services
from vouch.references.models import Attachment, Candidate
from vouch.vault.fields import Sealed

pytestmark = pytest.mark.django_db

NEW = {"name": "Alice Example", "email": "Alice.Example@Example.com", "phone": "07700 900123", "notes": "Met at a fair"}


def rows(response) -> int:
    return response.content.decode().count('<tr id="candidate-')


def test_recruiter_adds_a_candidate_and_it_is_encrypted_at_rest(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(reverse("candidate_new"), NEW)
    assert response.status_code == 302
    with company_context(company) as ctx:
        candidate = Candidate.objects.get()
        assert response["Location"] == reverse("candidate_detail", args=[candidate.pk])
        assert (candidate.name, candidate.email, candidate.phone, candidate.notes) == (
            "Alice Example",
            "Alice.Example@Example.com",
            "07700 900123",
            "Met at a fair",
        )
        assert candidate.created_by_id == members[Role.RECRUITER].user_id
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute("SELECT name, email, phone, notes, email_index, phone_index FROM references_candidate")
            raw = b"".join(bytes(v) if not isinstance(v, str) else v.encode() for v in cursor.fetchone())
        for plain in (b"Alice", b"Example", b"example.com", b"900123", b"7700", b"fair"):
            assert plain not in raw
        assert isinstance(Candidate.objects.values_list("email", flat=True)[0], Sealed)
        entry = Entry.objects.get(action="candidate_added")
        # The log names the candidate by id only: it outlives a deletion.
        assert "Alice" not in entry.summary and "Alice" not in str(entry.details)
        assert entry.details == {"candidate": str(candidate.pk)}
    page = client.get(reverse("candidate_detail", args=[candidate.pk])).content.decode()
    assert "Alice Example" in page and "Alice.Example@Example.com" in page and "Met at a fair" in page
    listing = client.get(reverse("candidates"))
    assert rows(listing) == 1 and b"Alice Example" in listing.content


@pytest.mark.parametrize(
    "query",
    ["alice.example@example.com", "  ALICE.EXAMPLE@EXAMPLE.COM ", "Alice.Example@Example.com"],
)
def test_search_by_email_matches_whatever_the_case_and_spacing(client, members, company, query):
    target = add_candidate(company, "Alice Example", "Alice.Example@Example.com")
    add_candidate(company, "Bob Other", "bob@example.com")
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("candidates"), {"q": query})
    assert response.status_code == 200
    assert rows(response) == 1
    assert f'id="candidate-{target.pk}"'.encode() in response.content
    assert b"Bob Other" not in response.content


@pytest.mark.parametrize(
    "query", ["07700 900123", "+44 7700 900123", "+447700900123", "(07700) 900-123", "07700900123"]
)
def test_search_by_phone_matches_national_and_international_forms(client, members, company, query):
    target = add_candidate(company, "Carol Phone", "carol@example.com", "+44 (0)7700 900123")
    add_candidate(company, "Dan Phone", "dan@example.com", "07700 900999")
    add_candidate(company, "Eve Nophone", "eve@example.com")
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("candidates"), {"q": query})
    assert response.status_code == 200
    assert rows(response) == 1, query
    assert f'id="candidate-{target.pk}"'.encode() in response.content


def test_search_goes_through_the_blind_index_and_finds_nothing_else(company):
    add_candidate(company, "Alice Example", "alice@example.com", "07700 900123")
    with company_context(company):
        by_email = services.find_candidates("ALICE@example.com")
        assert "email_index" in str(by_email.query)
        assert [c.name for c in by_email] == ["Alice Example"]
        assert [c.name for c in services.find_candidates("+44 7700 900123")] == ["Alice Example"]
        assert not services.find_candidates("alice@example.org").exists()
        assert not services.find_candidates("07700 900124").exists()
        # Anything else is a name, found through its keyed index (the starts of its words).
        for query in ("Alice", "Alice Example", "ali exa"):
            assert services.query_kind(query) == "name"
            assert "references_nameprefix" in str(services.find_candidates(query).query)
            assert [c.name for c in services.find_candidates(query)] == ["Alice Example"], query
        for query in ("12345", "Al", "Alicia"):
            assert not services.find_candidates(query).exists(), query
        for query in ("", "   ", "-", "'"):
            assert services.query_kind(query) is None
            assert not services.find_candidates(query).exists()


def test_a_search_that_finds_nobody_says_so(client, members, company):
    add_candidate(company, "Alice Example", "alice@example.com")
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("candidates"), {"q": "xyz"})
    assert response.status_code == 200 and rows(response) == 0
    assert "No candidates match “xyz”.".encode() in response.content
    short = client.get(reverse("candidates"), {"q": "Al"})
    assert rows(short) == 0 and b"words under 3 letters must be whole words" in short.content
    miss = client.get(reverse("candidates"), {"q": "nobody@example.com"})
    assert rows(miss) == 0 and b'id="no-match"' in miss.content
    assert b"(the whole address must match)" in miss.content
    nothing = client.get(reverse("candidates"), {"q": "--"})
    assert rows(nothing) == 0 and b'id="unsearchable"' in nothing.content


def test_pagination_newest_first_fifty_a_page(client, members, company):
    client.force_login(members[Role.VIEWER].user)
    empty = client.get(reverse("candidates"))
    assert b'id="no-candidates"' in empty.content
    base = timezone.now()
    with company_context(company):
        made = Candidate.objects.bulk_create(
            Candidate(name=f"Person {i:03d}", email=f"p{i}@example.com") for i in range(120)
        )
        for i, candidate in enumerate(made):
            Candidate.objects.filter(pk=candidate.pk).update(created_at=base - timezone.timedelta(minutes=i))
    first = client.get(reverse("candidates")).content.decode()
    assert first.count('<tr id="candidate-') == 50
    assert "Page 1 of 3" in first and "120 candidates" in first
    assert first.index("Person 000") < first.index("Person 049")
    assert "Person 050" not in first
    third = client.get(reverse("candidates"), {"page": "3"}).content.decode()
    assert third.count('<tr id="candidate-') == 20
    assert "Person 100" in third and "Person 119" in third
    for odd in ("0", "-1", "abc", "9999999", "99"):
        assert client.get(reverse("candidates"), {"page": odd}).status_code == 200
    # A search keeps its query in the page links.
    searched = client.get(reverse("candidates"), {"q": "p7@example.com"}).content.decode()
    assert searched.count('<tr id="candidate-') == 1


def test_the_list_is_three_queries_and_never_reads_the_notes(company):
    with company_context(company) as ctx:
        for i in range(30):
            services.create_candidate(f"Person {i}", f"p{i}@example.com", notes="private notes")
        with CaptureQueriesContext(connections[ctx.alias]) as queries:
            result = services.page_of_candidates("", "1")
            shown = [(c.name, c.email, c.phone, c.file_count) for c in result.page.object_list]
        assert len(shown) == 30
        # The count and the page of candidates, neither grouping the company's candidates by
        # their files; then the files of the page's candidates only.
        assert len(queries) == 3, [q["sql"] for q in queries]
        assert all("notes" not in q["sql"] and "GROUP BY" not in q["sql"] for q in queries[:2])
        assert "references_attachment" in queries[2]["sql"] and " IN (" in queries[2]["sql"]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
def test_what_each_role_may_do(client, members, company, role):
    candidate = add_candidate(company)
    attachment = add_file(company, candidate)
    client.force_login(members[role].user)
    nav = client.get(reverse("dashboard")).content
    assert b'href="/candidates/"' in nav
    assert client.get(reverse("candidates")).status_code == 200
    assert client.get(reverse("candidate_detail", args=[candidate.pk])).status_code == 200
    download = client.get(reverse("attachment_download", args=[candidate.pk, attachment.pk]))
    assert download.status_code == 200
    may_edit = role >= Role.RECRUITER
    may_delete = role >= Role.ADMIN
    detail = client.get(reverse("candidate_detail", args=[candidate.pk])).content
    assert (b"Edit details" in detail) is may_edit
    assert (b"Delete candidate" in detail) is may_delete

    created = client.post(reverse("candidate_new"), {"name": "New Person", "email": "new@example.com"})
    assert created.status_code == (302 if may_edit else 403)
    edited = client.post(
        reverse("candidate_edit", args=[candidate.pk]), {"name": "Renamed", "email": "alice@example.com"}
    )
    assert edited.status_code == (302 if may_edit else 403)
    uploaded = client.post(
        reverse("attachment_upload", args=[candidate.pk]),
        {"file": SimpleUploadedFile("second.pdf", pdf_bytes(500))},
    )
    assert uploaded.status_code == (302 if may_edit else 403)
    removed = client.post(reverse("attachment_delete", args=[candidate.pk, attachment.pk]))
    assert removed.status_code == (302 if may_delete else 403)
    deleted = client.post(reverse("candidate_delete", args=[candidate.pk]), {"confirm": "on"})
    assert deleted.status_code == (302 if may_delete else 403)
    with company_context(company):
        assert Candidate.objects.filter(pk=candidate.pk).exists() is not may_delete
        assert Candidate.objects.count() == 1 + may_edit - may_delete
        assert Attachment.objects.count() == (0 if may_delete else 1 + may_edit)
        if not may_edit:
            assert Candidate.objects.get().name == "Alice Example"


def test_deleting_needs_the_confirmation_box(client, members, company):
    candidate = add_candidate(company)
    client.force_login(members[Role.ADMIN].user)
    response = client.post(reverse("candidate_delete", args=[candidate.pk]), {})
    assert response.status_code == 302
    assert response["Location"] == reverse("candidate_detail", args=[candidate.pk])
    with company_context(company):
        assert Candidate.objects.filter(pk=candidate.pk).exists()
    page = client.get(response["Location"]).content
    assert b"Tick the box to confirm the deletion." in page
    assert client.get(reverse("candidate_delete", args=[candidate.pk])).status_code == 405


def test_another_companys_candidate_is_404_and_recorded(client, members, company):
    other = fast_company("Bravo Corp")
    fast_member(other, Role.ADMIN)
    theirs = add_candidate(other, "Bravo Secret", "secret@bravo.example")
    their_file = add_file(other, theirs)
    ours = add_candidate(company)
    owner = members[Role.OWNER]
    client.force_login(owner.user)
    urls = [
        ("GET", reverse("candidate_detail", args=[theirs.pk]), "candidate_detail"),
        ("GET", reverse("candidate_edit", args=[theirs.pk]), "candidate_edit"),
        ("POST", reverse("candidate_delete", args=[theirs.pk]), "candidate_delete"),
        ("GET", reverse("attachment_download", args=[theirs.pk, their_file.pk]), "attachment_download"),
        # Our own candidate with their file's id: still theirs, still a miss.
        ("GET", reverse("attachment_download", args=[ours.pk, their_file.pk]), "attachment_download"),
        ("POST", reverse("attachment_delete", args=[theirs.pk, their_file.pk]), "attachment_delete"),
        ("POST", reverse("attachment_upload", args=[theirs.pk]), "attachment_upload"),
    ]
    # Intrusion detection records its own events of these probes (tests/shield): counted here
    # are the refusals themselves.
    refusals = SecurityEvent.objects.filter(action=EventAction.AUTHZ_FAIL)
    for method, url, route in urls:
        before = refusals.count()
        response = client.post(url, {"confirm": "on"}) if method == "POST" else client.get(url)
        assert response.status_code == 404, url
        assert b"Bravo" not in response.content
        event = refusals.order_by("-seq").first()
        assert refusals.count() == before + 1
        assert (event.action, event.outcome, event.target) == (
            EventAction.AUTHZ_FAIL,
            Outcome.BLOCKED,
            f"route:{route}",
        )
        assert str(event.company_id) == str(company.pk)
    with company_context(other):
        assert Candidate.objects.filter(pk=theirs.pk).exists()
        assert Attachment.objects.filter(pk=their_file.pk).exists()
        assert their_file.file.storage.exists(their_file.file.name)
    listing = client.get(reverse("candidates"), {"q": "secret@bravo.example"})
    assert rows(listing) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Alice", "email": "not-an-email"}, "Enter a valid email address."),
        ({"name": "Alice", "email": "a@b"}, "Enter a valid email address."),
        ({"name": "", "email": "alice@example.com"}, "This field is required."),
        ({"name": "   ", "email": "alice@example.com"}, "This field is required."),
        ({"name": "A" * 201, "email": "alice@example.com"}, "at most 200 characters"),
        ({"name": "Al\x00ice", "email": "alice@example.com"}, "Null characters are not allowed."),
        ({"name": "Alice", "email": "alice@example.com", "phone": "call me"}, "Enter a phone number"),
        ({"name": "Alice", "email": "alice@example.com", "phone": "12"}, "Enter a phone number"),
        ({"name": "Alice", "email": "alice@example.com", "phone": "1" * 41}, "at most 40 characters"),
        ({"name": "Alice", "email": ("x" * 250) + "@example.com"}, "Ensure this value has at most 254"),
        ({"name": "Alice", "email": "alice@example.com", "notes": "n" * 10_001}, "at most 10000 characters"),
    ],
    ids=[
        "bad_email",
        "email_without_domain_dot",
        "no_name",
        "blank_name",
        "long_name",
        "nul_in_name",
        "words_for_phone",
        "short_phone",
        "long_phone",
        "long_email",
        "long_notes",
    ],
)
def test_bad_input_is_a_form_error_never_a_500(client, members, company, data, message):
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(reverse("candidate_new"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert b"Please correct the details marked below." in response.content
    with company_context(company):
        assert not Candidate.objects.exists()
    candidate = add_candidate(company)
    edit = client.post(reverse("candidate_edit", args=[candidate.pk]), data)
    assert edit.status_code == 400
    with company_context(company):
        assert Candidate.objects.get(pk=candidate.pk).name == "Alice Example"


def test_the_service_refuses_what_the_form_would(company):
    from django.core.exceptions import ValidationError

    with company_context(company):
        with pytest.raises(ValidationError):
            services.create_candidate("Alice", "not-an-email")
        with pytest.raises(ValidationError):
            services.create_candidate("", "alice@example.com")
        assert not Candidate.objects.exists()


@pytest.mark.parametrize("params", [{"q": "a\x00b"}, {"q": "x" * 255}, {"q": "line\nbreak"}])
def test_bad_searches_are_a_clear_400(client, members, params):
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("candidates"), params)
    assert response.status_code == 400
    assert b"That search is not valid" in response.content


def test_editing_logs_which_fields_changed_and_updates_the_index(client, members, company):
    candidate = add_candidate(company, phone="07700 900123")
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(
        reverse("candidate_edit", args=[candidate.pk]),
        {"name": "Alice Example", "email": "alice.new@example.com", "phone": "07700 900123", "notes": ""},
    )
    assert response.status_code == 302
    with company_context(company):
        assert not services.find_candidates("alice@example.com").exists()
        assert services.find_candidates("ALICE.NEW@example.com").get().pk == candidate.pk
        entry = Entry.objects.get(action="candidate_changed")
        assert entry.details == {"candidate": str(candidate.pk), "fields": ["email"]}
    same = client.post(
        reverse("candidate_edit", args=[candidate.pk]),
        {"name": "Alice Example", "email": "alice.new@example.com", "phone": "07700 900123"},
    )
    assert same.status_code == 302
    with company_context(company):
        assert Entry.objects.filter(action="candidate_changed").count() == 1


def test_unknown_ids_are_404(client, members):
    client.force_login(members[Role.OWNER].user)
    assert client.get(reverse("candidate_detail", args=[uuid.uuid4()])).status_code == 404
    assert client.get("/candidates/not-a-uuid/").status_code == 404


def test_deleting_a_candidate_with_requests_points_to_erasure_and_keeps_everything(client, members, company):
    from tests.references.workflow import make_request
    from vouch.references.models import ReferenceRequest

    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.ADMIN].user)
    response = client.post(reverse("candidate_delete", args=[reference_request.candidate_id]), {"confirm": "on"})
    assert response.status_code == 302
    assert response["Location"] == reverse("candidate_erase", args=[reference_request.candidate_id])
    with company_context(company):
        assert Candidate.objects.filter(pk=reference_request.candidate_id).exists()
        assert ReferenceRequest.objects.filter(pk=reference_request.pk).exists()
