"""Company files in the region's S3-compatible bucket (``VOUCH_REGION_<NAME>_FILES_URL``),
against a real S3 server (SeaweedFS): the same encrypted files as on disk, streamed in
and out, under the company's prefix, purged with it, re-encrypted by compare-and-swap,
and a bucket that is out answered with a clear page."""

from __future__ import annotations

import random
import tracemalloc
from datetime import timedelta

import boto3
import pytest
from django.core.files import File
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_company
from tests.references.helpers import add_candidate, add_file, pdf_with
from tests.references.test_attachments import download, upload
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.objectstore import PreconditionFailed, open_store
from vouch.references.models import Attachment
from vouch.tenancy import deletion, provisioning, regions
from vouch.vault import keyring
from vouch.vault.errors import DecryptionError
from vouch.vault.files import CHUNK_BYTES, HEADER_BYTES, encrypted_storage, version_of
from vouch.vault.rotation import rotate_company

# keys_dir: rotation adds and destroys key versions in a key directory of the test's own, with a
# one-second key cache (tests/vault/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keys_dir")]

MARKER = b"CONFIDENTIAL-REFERENCE-FOR-ALICE-EXAMPLE "


@pytest.fixture
def bucket(settings, s3_server, s3_bucket):
    """Region eu keeps its company files in a fresh bucket; a boto3 client to look inside."""
    config = settings.VOUCH_REGION_CONFIG
    settings.VOUCH_REGION_CONFIG = {**config, "eu": {**config["eu"], "files_url": s3_server.url(s3_bucket)}}
    assert regions.get("eu").files_in_bucket
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    client.bucket_name = s3_bucket
    return client


def objects(bucket, prefix: str = "") -> dict[str, bytes]:
    listing = bucket.list_objects_v2(Bucket=bucket.bucket_name, Prefix=prefix).get("Contents", [])
    return {o["Key"]: bucket.get_object(Bucket=bucket.bucket_name, Key=o["Key"])["Body"].read() for o in listing}


def test_an_attachment_goes_to_the_bucket_as_ciphertext_and_comes_back_through_the_app(
    client, members, company, bucket
):
    candidate = add_candidate(company)
    payload = pdf_with(MARKER * (3 * CHUNK_BYTES // len(MARKER)) + b"tail")
    client.force_login(members[Role.RECRUITER].user)
    assert upload(client, candidate, "Alice Example - note.pdf", payload).status_code == 302

    with company_context(company):
        attachment = Attachment.objects.get()
    stored = objects(bucket)
    assert list(stored) == [f"{company.pk}/{attachment.file.name}"]
    raw = stored[f"{company.pk}/{attachment.file.name}"]
    assert MARKER not in raw and b"%PDF" not in raw and b"ALICE" not in raw
    assert len(raw) > len(payload)  # the header and a tag per chunk
    # Nothing on the region's disk: the bucket is the only place.
    files_dir = provisioning.files_dir(company.pk, company.region)
    assert not files_dir.exists() or not any(files_dir.rglob("*"))

    got = download(client, attachment)
    assert got.status_code == 200 and got.streaming
    assert b"".join(got.streaming_content) == payload
    assert got["Content-Length"] == str(len(payload))


def test_a_tampered_object_fails_closed(client, members, company, bucket):
    candidate = add_candidate(company)
    payload = pdf_with(MARKER * (2 * CHUNK_BYTES // len(MARKER)))
    attachment = add_file(company, candidate, content=payload)
    key = f"{company.pk}/{attachment.file.name}"
    raw = bytearray(objects(bucket)[key])
    raw[HEADER_BYTES + 100] ^= 0x01  # one bit of the first chunk's ciphertext
    bucket.put_object(Bucket=bucket.bucket_name, Key=key, Body=bytes(raw))

    client.force_login(members[Role.RECRUITER].user)
    got = download(client, attachment)
    assert got.status_code == 500 and not got.streaming
    assert b"cannot be opened" in got.content and MARKER not in got.content
    assert SecurityEvent.objects.filter(company_id=company.pk, action=EventAction.DATA_INTEGRITY_FAIL).exists()

    # Swapped in from another company's prefix: refused too (the file key names company and file).
    other = make_company("Other")
    with company_context(other):
        name = encrypted_storage.save("attachments/swapped", ContentFile(b"other company's file"))
    bucket.put_object(Bucket=bucket.bucket_name, Key=key, Body=objects(bucket)[f"{other.pk}/{name}"])
    with company_context(company), pytest.raises(DecryptionError), encrypted_storage.open(attachment.file.name) as f:
        f.read()


def test_a_20_mb_file_streams_in_and_out_with_bounded_memory(company, bucket, tmp_path):
    size = 20 * 1024 * 1024
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        for _ in range(size // (1024 * 1024)):
            out.write(random.randbytes(1024 * 1024))
    with company_context(company):
        encrypted_storage.save("attachments/warm-up", ContentFile(b"x"))  # keys loaded, client made
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            with open(source, "rb") as handle:
                name = encrypted_storage.save("attachments/big", File(handle))
            upload_growth = tracemalloc.get_traced_memory()[1] - start
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            read = 0
            with open(source, "rb") as expected, encrypted_storage.open(name) as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    assert chunk == expected.read(len(chunk))
                    read += len(chunk)
            download_growth = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()
        assert read == size == encrypted_storage.size(name)
    print(f"20 MiB file: peak growth {upload_growth / 2**20:.1f} MiB up, {download_growth / 2**20:.1f} MiB down")
    # Parts of 8 MiB are spooled to a temporary file and read by botocore in pieces;
    # reads come 1 MiB at a time. A whole part (let alone the file) in memory fails this.
    assert upload_growth < 6 * 2**20
    assert download_growth < 6 * 2**20


def test_purge_removes_every_object_of_the_company_and_only_those(company, bucket):
    other = make_company("Kept")
    for each in (company, other):
        with company_context(each):
            encrypted_storage.save("attachments/a", ContentFile(b"a" * 1000))
            encrypted_storage.save("reports/b.pdf", ContentFile(b"b" * 1000))
    assert len(objects(bucket, f"{company.pk}/")) == 2
    owner = company.memberships.get(role=Role.OWNER)
    now = timezone.now()
    deletion.schedule_deletion(company, owner, now=now)

    purged = deletion.purge_due(now=now + deletion.grace_period() + timedelta(seconds=1))

    assert [c.pk for c in purged] == [company.pk]
    assert objects(bucket, f"{company.pk}/") == {}
    assert sorted(objects(bucket, f"{other.pk}/")) == [f"{other.pk}/attachments/a", f"{other.pk}/reports/b.pdf"]


def _seed_files(company, count: int = 4) -> dict[str, bytes]:
    stored = {}
    with company_context(company):
        for i in range(count):
            payload = random.randbytes(CHUNK_BYTES * (i % 3) + 1000 + i)
            stored[encrypted_storage.save(f"seed/{i}.bin", ContentFile(payload))] = payload
    return stored


def _versions(bucket, company) -> set[int]:
    return {version_of(raw[:HEADER_BYTES]) for raw in objects(bucket, f"{company.pk}/").values()}


def test_rotation_reencrypts_the_objects_in_the_bucket(company, bucket):
    stored = _seed_files(company)
    assert _versions(bucket, company) == {1}

    result = rotate_company(company, settle_seconds=0)

    assert result["files"] == len(stored)
    keyring.forget()
    assert _versions(bucket, company) == {2}
    with company_context(company):
        assert sorted(encrypted_storage.walk()) == sorted(stored)
        for name, payload in stored.items():
            with encrypted_storage.open(name) as handle:
                assert handle.read() == payload


@pytest.mark.parametrize("meanwhile", ["deleted", "saved again"])
def test_an_object_changed_while_it_is_reencrypted_keeps_its_newer_state(company, bucket, monkeypatch, meanwhile):
    from vouch.vault import files

    stored = _seed_files(company, count=2)
    target = sorted(stored)[0]
    real = files.encrypt_chunks
    newer = b"saved by the app while the rotation re-encrypted the old one"

    def changed_meanwhile(company_id, name, chunks):
        if name == target and not changed:
            changed.append(name)
            if meanwhile == "deleted":
                encrypted_storage.delete(name)
            else:
                encrypted_storage._save(name, ContentFile(newer))  # same name, new content
        return real(company_id, name, chunks)

    changed: list[str] = []
    monkeypatch.setattr(files, "encrypt_chunks", changed_meanwhile)
    result = rotate_company(company, settle_seconds=0)

    assert changed == [target] and result["raced"] >= 1
    keyring.forget()
    with company_context(company):
        if meanwhile == "deleted":
            assert not encrypted_storage.exists(target)
            assert list(encrypted_storage.walk()) == [n for n in sorted(stored) if n != target]
        else:
            with encrypted_storage.open(target) as handle:
                assert handle.read() == newer
    assert _versions(bucket, company) == {2}


@pytest.mark.parametrize("size", [1000, 20 * 1024 * 1024], ids=["one-part", "multipart"])
def test_a_conditional_put_refuses_an_object_replaced_or_deleted_since_it_was_read(s3_server, s3_bucket, size):
    store = open_store(s3_server.url(s3_bucket, "cas"))
    store.put("k", [b"first"])
    etag, chunks = store.open_tagged("k")
    assert b"".join(chunks) == b"first"
    store.put("k", [b"second"])
    with pytest.raises(PreconditionFailed):
        store.put_if_match("k", [b"x" * size], etag)
    assert store.get("k") == b"second"

    etag, _ = store.open_tagged("k")
    store.delete("k")
    with pytest.raises(PreconditionFailed):
        store.put_if_match("k", [b"x" * size], etag)
    assert not store.exists("k")

    store.put("k", [b"third"])
    etag, _ = store.open_tagged("k")
    assert store.put_if_match("k", [b"y" * size], etag) == size
    assert store.size("k") == size
    assert not store._client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")  # none left behind


def test_a_bucket_that_is_out_gives_a_clear_page_and_loses_nothing(client, members, company, bucket, s3_server):
    candidate = add_candidate(company)
    kept = pdf_with(MARKER * 100)
    attachment = add_file(company, candidate, content=kept)
    client.force_login(members[Role.RECRUITER].user)
    s3_server.stop()
    try:
        refused = upload(client, candidate, "second.pdf", pdf_with(b"second file"))
        assert refused.status_code == 503
        assert b"cannot reach its file storage" in refused.content
        assert b"Alice Example" in refused.content  # the candidate's page, with its data
        got = download(client, attachment)
        assert got.status_code == 503 and b"Traceback" not in got.content
        assert b"Files are briefly unavailable" in got.content
        page = client.get(reverse("candidate_detail", args=[candidate.pk]))
        assert page.status_code == 200 and b"cv.pdf" in page.content
    finally:
        s3_server.start()
    with company_context(company):
        # The refused upload left no row behind; the earlier file is intact.
        assert list(Attachment.objects.values_list("pk", flat=True)) == [attachment.pk]
    got = download(client, attachment)
    assert got.status_code == 200 and b"".join(got.streaming_content) == kept
    assert upload(client, candidate, "second.pdf", pdf_with(b"second file")).status_code == 302
