"""Tampering with what is at rest: one byte of an encrypted value (header, nonce,
body, tag), and encrypted files altered, truncated, reordered, extended, or moved
to another name or company. Each is detected (``DecryptionError`` plus a security
event), and a file never yields plaintext from a damaged chunk: what a reader got
before the error is exactly the authentic start of the file."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
from django.core.files.base import ContentFile

from tests.conftest import make_company
from tests.vault.attack import flip, integrity_failures, read_raw, write_raw
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.tenancy.provisioning import files_dir
from vouch.vault import keyring, sealing
from vouch.vault.errors import DecryptionError
from vouch.vault.files import BLOCK_BYTES, CHUNK_BYTES, HEADER_BYTES, decrypt_stream, encrypted_storage

pytestmark = pytest.mark.django_db

# --- Values ---------------------------------------------------------------------

NONCE_START = sealing.HEADER_BYTES
BODY_START = sealing.HEADER_BYTES + sealing.NONCE_BYTES
VALUE_POSITIONS = {
    "format byte": 0,
    "key version, high byte": 1,
    "key version, low byte": 4,
    "nonce, first byte": NONCE_START,
    "nonce, last byte": BODY_START - 1,
    "body, first byte": BODY_START,
    "body, middle": BODY_START + 20,
    "tag, first byte": -sealing.TAG_BYTES,
    "tag, last byte": -1,
}


def refused_value(company, entry_pk, field: str = "summary") -> str:
    """Read the field of a freshly loaded row; it must be refused with one event."""
    before = len(integrity_failures(company.pk))
    fresh = Entry.objects.get(pk=entry_pk)
    with pytest.raises(DecryptionError) as caught:
        getattr(fresh, field)
    events = integrity_failures(company.pk)
    assert len(events) == before + 1
    assert events[-1].target == f"activity.entry.{field}:{entry_pk}"
    return str(caught.value)


@pytest.mark.parametrize("position", VALUE_POSITIONS.values(), ids=VALUE_POSITIONS.keys())
def test_one_byte_changed_anywhere_in_a_value_is_detected(company, position):
    secret = "Mirabel Montgomery, 07700 900333, declined the offer" * 2
    with company_context(company) as ctx:
        entry = Entry.objects.create(action="x", summary=secret, details={"answer": secret})
        for column in ("summary", "details"):
            stored = read_raw(ctx.alias, Entry, column, entry.pk)
            assert len(stored) > BODY_START + 20 + sealing.TAG_BYTES
            write_raw(ctx.alias, Entry, column, entry.pk, flip(stored, position % len(stored)))
            message = refused_value(company, entry.pk, column)
            assert "Mirabel" not in message


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v[:-1],
        lambda v: v + b"\x00",
        lambda v: v[: sealing.HEADER_BYTES + sealing.NONCE_BYTES],
        lambda v: v[: sealing.HEADER_BYTES],
        lambda v: b"",
        lambda v: v[:1] + v[1:5] + os.urandom(len(v) - 5),
    ],
    ids=["last byte cut", "byte appended", "header and nonce only", "header only", "empty", "body replaced"],
)
def test_truncated_extended_or_replaced_value_is_detected(company, damage):
    with company_context(company) as ctx:
        entry = Entry.objects.create(action="x", summary="Nico Northcott")
        write_raw(ctx.alias, Entry, "summary", entry.pk, damage(read_raw(ctx.alias, Entry, "summary", entry.pk)))
        refused_value(company, entry.pk)


def test_key_version_changed_to_another_version_the_company_has_is_detected(company):
    """The header is authenticated: pointing a value at another real key version
    of the same company does not make it open (nor open as something else)."""
    with company_context(company) as ctx:
        entry = Entry.objects.create(action="x", summary="Olwen Oakes")
        stored = read_raw(ctx.alias, Entry, "summary", entry.pk)
        assert sealing.key_version(stored) == 1
        assert keyring.add_data_key_version(company.pk) == 2
        assert Entry.objects.get(pk=entry.pk).summary == "Olwen Oakes"  # version 1 still opens
        write_raw(ctx.alias, Entry, "summary", entry.pk, stored[:1] + (2).to_bytes(4, "big") + stored[5:])
        assert "authentication failed" in refused_value(company, entry.pk)


# --- Files ------------------------------------------------------------------------

CHUNKS = 3  # full chunks, then a short last one
PAYLOAD_BYTES = CHUNKS * CHUNK_BYTES + 1000


def chunk_start(index: int) -> int:
    return HEADER_BYTES + index * BLOCK_BYTES


def block(data: bytes, index: int) -> bytes:
    return data[chunk_start(index) : chunk_start(index + 1)]


@pytest.fixture
def stored_file(company):
    """A four-chunk encrypted file of random content, its path, and the content."""
    payload = os.urandom(PAYLOAD_BYTES)
    with company_context(company):
        name = encrypted_storage.save(f"attachments/{uuid.uuid4()}.bin", ContentFile(payload))
    path = files_dir(company.pk, company.region) / name
    assert len(path.read_bytes()) == HEADER_BYTES + CHUNKS * BLOCK_BYTES + 1000 + 16
    return name, path, payload


def read_until_refused(company, name: str, path) -> bytes:
    """Everything ``decrypt_stream`` yields before it refuses the file (it must)."""
    yielded = []
    before = len(integrity_failures(company.pk))
    with company_context(company), open(path, "rb") as source, pytest.raises(DecryptionError):
        for chunk in decrypt_stream(company.pk, name, source):
            yielded.append(chunk)
    events = integrity_failures(company.pk)
    assert len(events) == before + 1 and events[-1].target == f"file:{name}"
    # Through the storage too, as a download view reads it: an error, not short data.
    with company_context(company), pytest.raises(DecryptionError), encrypted_storage.open(name) as handle:
        handle.read()
    return b"".join(yielded)


def swap_blocks(data: bytes, i: int, j: int) -> bytes:
    blocks = [block(data, k) for k in range(CHUNKS + 1)]
    blocks[i], blocks[j] = blocks[j], blocks[i]
    return data[:HEADER_BYTES] + b"".join(blocks)


# (damage, number of authentic chunks a reader may receive before the refusal)
FILE_DAMAGE = {
    "byte flipped in chunk 0": (lambda d: flip(d, chunk_start(0) + 7), 0),
    "byte flipped in chunk 2": (lambda d: flip(d, chunk_start(2) + 5000), 2),
    "byte flipped in chunk 1's tag": (lambda d: flip(d, chunk_start(2) - 1), 1),
    "byte flipped in the last chunk": (lambda d: flip(d, len(d) - 100), 3),
    "magic changed": (lambda d: flip(d, 0), 0),
    "format changed": (lambda d: flip(d, 4), 0),
    "key version changed": (lambda d: flip(d, 8), 0),
    "salt changed": (lambda d: flip(d, HEADER_BYTES - 1), 0),
    "truncated at a chunk boundary": (lambda d: d[: chunk_start(2)], 1),
    "truncated mid-chunk": (lambda d: d[: chunk_start(2) + 500], 2),
    "truncated inside the last tag": (lambda d: d[:-5], 3),
    "last chunk dropped": (lambda d: d[: chunk_start(CHUNKS)], 2),
    "header only": (lambda d: d[:HEADER_BYTES], 0),
    "empty": (lambda d: b"", 0),
    "chunks 0 and 1 swapped": (lambda d: swap_blocks(d, 0, 1), 0),
    "chunks 1 and 2 swapped": (lambda d: swap_blocks(d, 1, 2), 1),
    "last chunk moved first": (lambda d: swap_blocks(d, 0, CHUNKS), 0),
    "chunk 0 appended": (lambda d: d + block(d, 0), 3),
    "last chunk repeated": (lambda d: d + d[chunk_start(CHUNKS) :], 3),
    "one byte appended": (lambda d: d + b"\x00", 3),
    "chunk 1 duplicated in place of chunk 2": (lambda d: d[: chunk_start(2)] + block(d, 1) + d[chunk_start(3) :], 2),
}


@pytest.mark.parametrize("case", FILE_DAMAGE.keys())
def test_damaged_file_is_refused_after_at_most_its_authentic_prefix(company, stored_file, case):
    damage, authentic_chunks = FILE_DAMAGE[case]
    name, path, payload = stored_file
    path.write_bytes(damage(path.read_bytes()))
    got = read_until_refused(company, name, path)
    # Only whole chunks that authenticated, in their place: never any of the damage.
    assert got == payload[: authentic_chunks * CHUNK_BYTES]


def test_file_copied_to_another_name_is_refused(company, stored_file):
    name, path, payload = stored_file
    other = f"attachments/{uuid.uuid4()}.bin"
    copy = files_dir(company.pk, company.region) / other
    shutil.copyfile(path, copy)
    assert read_until_refused(company, other, copy) == b""
    with company_context(company), encrypted_storage.open(name) as handle:
        assert handle.read() == payload  # the original still opens


def test_file_copied_into_another_companys_files_is_refused(company, stored_file):
    name, path, payload = stored_file
    other = make_company()
    copy = files_dir(other.pk, other.region) / name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)
    assert read_until_refused(other, name, copy) == b""
    assert integrity_failures(company.pk) == []


def test_file_with_chunks_spliced_from_another_file_is_refused(company, stored_file):
    """Same company, same key, same chunk position: the per-file key (salt, name)
    still tells the files apart."""
    name, path, payload = stored_file
    with company_context(company):
        other = encrypted_storage.save(f"attachments/{uuid.uuid4()}.bin", ContentFile(os.urandom(PAYLOAD_BYTES)))
    donor = (files_dir(company.pk, company.region) / other).read_bytes()
    data = path.read_bytes()
    path.write_bytes(data[: chunk_start(1)] + block(donor, 1) + data[chunk_start(2) :])
    assert read_until_refused(company, name, path) == payload[:CHUNK_BYTES]
