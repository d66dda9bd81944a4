"""Ciphertext moved where it does not belong: between two rows, two columns of a row,
two companies. Someone with write access to the database (a DBA, a restored backup,
an SQL injection elsewhere) cannot make Vouch show one person's data as another's:
every such read fails loudly (``DecryptionError``), leaves a security event, and
never yields the ciphertext or the moved value's plaintext.

Also the fail-closed rules of the ORM: encrypted columns come back from values() as
opaque ``Sealed``, cannot be filtered on, and update()/bulk_update() refuse anything
but ciphertext instead of storing plaintext."""

from __future__ import annotations

import pytest
from django.core.exceptions import FieldError
from django.db import connections
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Lower, Upper

from tests.conftest import make_company
from tests.vault.attack import integrity_failures, read_raw, write_raw
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, Outcome
from vouch.core.context import company_context
from vouch.references.models import Attachment, Candidate
from vouch.references.services import create_candidate, find_candidates
from vouch.vault.errors import DecryptionError, VaultError
from vouch.vault.fields import Sealed

pytestmark = pytest.mark.django_db


def assert_refused(company, instance, field: str, *, never: list) -> None:
    """Reading ``instance.field`` raises DecryptionError naming the row and field, records exactly one
    data integrity event for the company, and nothing in ``never`` (plaintexts,
    ciphertexts) appears in the error or the event."""
    before = len(integrity_failures(company.pk))
    with pytest.raises(DecryptionError) as caught:
        getattr(instance, field)
    events = integrity_failures(company.pk)
    assert len(events) == before + 1
    event = events[-1]
    assert event.action == EventAction.DATA_INTEGRITY_FAIL
    assert event.outcome == Outcome.FAILURE
    assert event.target == f"{instance._meta.label_lower}.{field}:{instance.pk}"
    assert "authentication failed" in event.details["reason"]
    shown = f"{caught.value} {event.target} {event.details}"
    for value in never:
        if isinstance(value, bytes):
            assert value.hex() not in shown and repr(value)[2:40] not in shown
        else:
            assert value not in shown


def test_ciphertext_swapped_between_two_rows_is_refused_both_ways(company):
    with company_context(company) as ctx:
        alice = Entry.objects.create(action="x", summary="Alice Arkwright", details={"phone": "07700 900111"})
        bob = Entry.objects.create(action="x", summary="Bob Brackenbury", details={"phone": "07700 900222"})
        stolen = {
            (who.pk, column): read_raw(ctx.alias, Entry, column, who.pk)
            for who in (alice, bob)
            for column in ("summary", "details")
        }
        for column in ("summary", "details"):
            write_raw(ctx.alias, Entry, column, alice.pk, stolen[bob.pk, column])
            write_raw(ctx.alias, Entry, column, bob.pk, stolen[alice.pk, column])
        never = [*stolen.values(), "Alice", "Bob", "900111", "900222"]
        for row in (alice, bob):
            for field in ("summary", "details"):
                fresh = Entry.objects.get(pk=row.pk)
                assert_refused(company, fresh, field, never=never)
                # Not cached as anything readable: asking again fails again.
                assert_refused(company, fresh, field, never=never)
                assert type(fresh.__dict__[field]) is Sealed
        # A list of every entry refuses as a whole rather than showing the swapped rows.
        with pytest.raises(DecryptionError):
            [e.summary for e in Entry.objects.all()]  # noqa: B018


def test_ciphertext_moved_to_another_column_of_the_same_row_is_refused(company):
    with company_context(company) as ctx:
        entry = Entry.objects.create(
            action="x", summary="Carla Cuthbertson", actor_name="Dev Recruiter", details={"note": "strong"}
        )
        summary = read_raw(ctx.alias, Entry, "summary", entry.pk)
        details = read_raw(ctx.alias, Entry, "details", entry.pk)
        write_raw(ctx.alias, Entry, "actor_name", entry.pk, summary)
        write_raw(ctx.alias, Entry, "summary", entry.pk, details)  # JSON's ciphertext into a text column
        fresh = Entry.objects.get(pk=entry.pk)
        never = [summary, details, "Carla", "strong"]
        assert_refused(company, fresh, "actor_name", never=never)
        assert_refused(company, fresh, "summary", never=never)
        assert fresh.details == {"note": "strong"}  # the untouched column still reads

        # The same move through the ORM (an F() expression copies ciphertext in SQL)
        # fails the same way: the binding to the column travels with the value.
        other = Entry.objects.create(action="x", summary="Dora Dunwoody", actor_name="Eve")
        Entry.objects.filter(pk=other.pk).update(actor_name=F("summary"))
        fresh = Entry.objects.get(pk=other.pk)
        assert_refused(company, fresh, "actor_name", never=["Dora"])


def test_ciphertext_copied_from_another_company_is_refused():
    first, second = make_company("First Hiring"), make_company("Second Hiring")
    with company_context(first) as ctx:
        source = Entry.objects.create(action="x", summary="Fenella Fairweather", details={"salary": 91000})
        columns = [f.column for f in Entry._meta.concrete_fields]
        qn = connections[ctx.alias].ops.quote_name
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(map(qn, columns))} FROM activity_entry WHERE id = %s",  # noqa: S608
                [Entry._meta.pk.get_db_prep_value(source.pk, connections[ctx.alias])],
            )
            whole_row = cursor.fetchone()
        stolen = read_raw(ctx.alias, Entry, "summary", source.pk)
    with company_context(second) as ctx:
        target = Entry.objects.create(action="x", summary="Gideon Grey")
        write_raw(ctx.alias, Entry, "summary", target.pk, stolen)
        fresh = Entry.objects.get(pk=target.pk)
        assert_refused(second, fresh, "summary", never=[stolen, "Fenella"])
        # The whole row, primary key included, inserted into the other company's
        # database: the company is part of the binding (and the key differs).
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO activity_entry ({', '.join(map(qn, columns))}) "  # noqa: S608
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                list(whole_row),
            )
        copied = Entry.objects.get(pk=source.pk)
        for field in ("summary", "details"):
            assert_refused(second, copied, field, never=["Fenella", "91000"])
    # The events are recorded against the company where the read happened.
    assert integrity_failures(first.pk) == []
    with company_context(first):
        assert Entry.objects.get(pk=source.pk).summary == "Fenella Fairweather"  # the original is intact


def test_ciphertext_moved_between_candidates_or_to_another_table_is_refused(company):
    """The swaps that would hurt most: one candidate's email shown on another's record
    (found by the other's blind index), notes or a file name shown in another table."""
    with company_context(company) as ctx:
        jane = create_candidate("Jane Juniper", "jane@example.org", "07700 900666", notes="Excellent references")
        kim = create_candidate("Kim Kestrel", "kim@example.org", "07700 900777")
        stolen = {
            column: read_raw(ctx.alias, Candidate, column, kim.pk) for column in ("name", "email", "phone", "notes")
        }
        for column, value in stolen.items():
            write_raw(ctx.alias, Candidate, column, jane.pk, value)
        found = find_candidates("jane@example.org").get()  # the blind index still points at Jane's row
        assert found.pk == jane.pk
        for column in stolen:
            assert_refused(company, found, column, never=["Kim", "kim@", "900777", *stolen.values()])
        assert find_candidates("kim@example.org").get().email == "kim@example.org"

        entry = Entry.objects.create(action="x", summary="placeholder")
        notes = read_raw(ctx.alias, Candidate, "notes", kim.pk)
        write_raw(ctx.alias, Entry, "summary", entry.pk, notes)
        assert_refused(company, Entry.objects.get(pk=entry.pk), "summary", never=["Excellent", notes])
        # A candidate's name as an attachment's original file name: both short text.
        attachment = Attachment.objects.create(
            candidate=kim, file="attachments/none", original_name="cv.pdf", content_type="application/pdf", size=1
        )
        write_raw(ctx.alias, Attachment, "original_name", attachment.pk, stolen["name"])
        assert_refused(company, Attachment.objects.get(pk=attachment.pk), "original_name", never=["Kim"])


def test_values_and_values_list_give_sealed_never_text(company):
    with company_context(company):
        entry = Entry.objects.create(action="x", summary="Hattie Hargreaves", actor_name="Ivo", details={"k": "v"})
        row = Entry.objects.values().get(pk=entry.pk)
        for field in ("summary", "actor_name", "details"):
            assert type(row[field]) is Sealed
            assert str(row[field]) == "[encrypted]"
            assert "Hattie" not in repr(row[field]) and row[field].data not in repr(row[field]).encode()
        listed = Entry.objects.values_list("summary", "actor_name", "details").get(pk=entry.pk)
        assert all(type(value) is Sealed for value in listed)
        assert type(Entry.objects.values_list("summary", flat=True).get(pk=entry.pk)) is Sealed
        assert row["action"] == "x"  # plain columns are plain


@pytest.mark.parametrize(
    "query",
    [
        {"summary": "Hattie Hargreaves"},
        {"summary__iexact": "hattie hargreaves"},
        {"summary__icontains": "Hattie"},
        {"summary__startswith": "H"},
        {"summary__in": ["Hattie Hargreaves"]},
        {"summary__gt": ""},
        {"summary__regex": "^H"},
        {"actor_name": "Ivo"},
        {"details__k": "v"},
        {"details__contains": {"k": "v"}},
        {"details__has_key": "k"},
    ],
    ids=lambda q: next(iter(q)),
)
def test_filtering_on_an_encrypted_field_is_refused(company, query):
    with company_context(company):
        Entry.objects.create(action="x", summary="Hattie Hargreaves", actor_name="Ivo", details={"k": "v"})
        with pytest.raises(FieldError, match="encrypted"):
            list(Entry.objects.filter(**query))
        with pytest.raises(FieldError, match="encrypted"):
            list(Entry.objects.exclude(Q(**query)))


def test_filtering_through_a_database_function_is_refused(company):
    with company_context(company):
        Entry.objects.create(action="x", summary="Hattie Hargreaves")
        with pytest.raises(FieldError, match="encrypted"):
            list(Entry.objects.annotate(lowered=Lower("summary")).filter(lowered="hattie hargreaves"))


@pytest.mark.parametrize(
    "value",
    [
        "Plain Jane",
        b"Plain Jane",
        {"name": "Plain Jane"},
        Value("Plain Jane"),
        Value(b"Plain Jane"),
        Concat(Value("Plain "), Value("Jane")),
        Upper(Value("Plain Jane")),
        F("action"),  # a plaintext column copied into an encrypted one
    ],
    ids=["str", "bytes", "dict", "Value-str", "Value-bytes", "Concat", "Upper", "F-plain-column"],
)
def test_update_with_anything_but_ciphertext_is_refused_and_stores_nothing(company, value):
    with company_context(company) as ctx:
        entry = Entry.objects.create(action="Plain Jane", summary="Kit Kendrick")
        before = read_raw(ctx.alias, Entry, "summary", entry.pk)
        with pytest.raises(VaultError, match="encrypted"):
            Entry.objects.filter(pk=entry.pk).update(summary=value)
        assert read_raw(ctx.alias, Entry, "summary", entry.pk) == before
        assert Entry.objects.get(pk=entry.pk).summary == "Kit Kendrick"


def test_bulk_update_is_refused_and_stores_nothing(company):
    with company_context(company) as ctx:
        entries = [Entry.objects.create(action="x", summary=f"Lola Lindqvist {i}") for i in range(3)]
        before = [read_raw(ctx.alias, Entry, "summary", e.pk) for e in entries]
        for entry in entries:
            entry.summary = "Plain Jane"
        with pytest.raises(VaultError, match="encrypted"):
            Entry.objects.bulk_update(entries, ["summary"])
        assert [read_raw(ctx.alias, Entry, "summary", e.pk) for e in entries] == before
        assert [e.summary for e in Entry.objects.order_by("occurred_at")] == [f"Lola Lindqvist {i}" for i in range(3)]
