"""The vault's basic round trips: fields, blind indexes, files."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.db import connections

from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.vault.errors import DecryptionError
from vouch.vault.fields import Sealed, blind_index
from vouch.vault.files import CHUNK_BYTES, encrypted_storage


@pytest.mark.django_db
def test_field_round_trip_and_ciphertext_at_rest(company):
    with company_context(company) as ctx:
        entry = Entry.objects.create(action="x", summary="Alice Example", actor_name="Bob", details={"phone": "0770"})
        fresh = Entry.objects.get(pk=entry.pk)
        assert (fresh.summary, fresh.actor_name, fresh.details) == ("Alice Example", "Bob", {"phone": "0770"})
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute("SELECT summary FROM activity_entry")
            raw = bytes(cursor.fetchone()[0])
        assert b"Alice" not in raw
        assert isinstance(Entry.objects.values_list("summary", flat=True)[0], Sealed)


@pytest.mark.django_db
def test_value_swapped_between_rows_fails(company):
    with company_context(company) as ctx:
        a = Entry.objects.create(action="x", summary="first")
        b = Entry.objects.create(action="x", summary="second")
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute(
                "SELECT summary FROM activity_entry WHERE id = %s",
                [a.pk.hex if connections[ctx.alias].vendor == "sqlite" else a.pk],
            )
            raw = cursor.fetchone()[0]
        Entry.objects.filter(pk=b.pk).update(summary=Sealed(bytes(raw)))
        with pytest.raises(DecryptionError):
            Entry.objects.get(pk=b.pk).summary  # noqa: B018


@pytest.mark.django_db
def test_blind_index_normalises(company):
    with company_context(company):
        assert blind_index("email", " Alice@Example.COM") == blind_index("email", "alice@example.com")
        assert blind_index("phone", "+44 7700 900123") == blind_index("phone", "07700 900123")
        assert blind_index("email", "a@example.com") != blind_index("email", "b@example.com")


@pytest.mark.django_db
def test_file_round_trip_and_truncation(company):
    payload = bytes(range(256)) * (CHUNK_BYTES // 128 + 3)
    with company_context(company):
        name = encrypted_storage.save("reports/r.pdf", ContentFile(payload))
        with encrypted_storage.open(name) as handle:
            assert handle.read() == payload
        assert encrypted_storage.size(name) == len(payload)
        path = encrypted_storage.stored_path(name)
        assert payload[:1000] not in path.read_bytes()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 100])
        with pytest.raises(DecryptionError), encrypted_storage.open(name) as handle:
            handle.read()
        empty = encrypted_storage.save("e.txt", io.BytesIO(b""))
        with encrypted_storage.open(empty) as handle:
            assert handle.read() == b""


@pytest.mark.django_db
def test_unwrapped_keys_leave_memory_after_the_cache_time(company, settings):
    import time

    from vouch.vault import keyring

    settings.VOUCH_KEY_CACHE_SECONDS = 30
    keyring.forget()
    keyring.keys_for(company.pk)
    assert company.pk in keyring._cache
    assert keyring.sweep(now=time.monotonic() + 10) == 0
    assert keyring.sweep(now=time.monotonic() + 31) == 1
    assert company.pk not in keyring._cache
