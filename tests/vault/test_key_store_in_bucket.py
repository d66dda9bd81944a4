"""The key store in an S3 bucket (``VOUCH_KEY_STORE_URL=s3://...``), on a real SeaweedFS:
what app servers share so that none keeps state. The same wrapped JSON blobs as the
directory store, as objects; the bucket alone opens nothing."""

from __future__ import annotations

import base64
import json
import threading
import uuid

import boto3
import pytest

from tests.conftest import HTTPSClient, make_company
from tests.vault.helpers import bulk_companies
from tests.vault.test_company_keks import fresh, outer_layer, read_summary, to_old_scheme
from vouch import cli
from vouch.activity.services import log
from vouch.core.context import company_context
from vouch.vault import backup_keys, kek_adoption, keyblobs, keyring, keystore
from vouch.vault.errors import DecryptionError, KeyConfigurationError, KeyUnavailable
from vouch.vault.models import DataKey, KeyScheme
from vouch.vault.rotation import rotate_master

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def bucket_keys(keys_dir, settings, s3_server, s3_bucket):
    """The key store in ``s3_bucket`` under ``keys/``; master keys stay files in ``keys_dir``."""
    settings.VOUCH_KEY_STORE_URL = s3_server.url(s3_bucket, "keys")
    fresh()
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    return client, s3_bucket


def objects(bucket_keys) -> dict[str, bytes]:
    client, bucket = bucket_keys
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


# --- The storage contract, the same on both ------------------------------------------------


@pytest.fixture(params=["directory", "bucket"])
def blobs(request, keys_dir, settings):
    if request.param == "bucket":
        server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
        settings.VOUCH_KEY_STORE_URL = server.url(bucket, "keys")
    return keystore.store()


def test_both_stores_create_once_replace_only_what_was_read_and_list(blobs):
    assert blobs.create("companies/a.kek", b"one")
    assert not blobs.create("companies/a.kek", b"two")  # the first is kept
    data, tag = blobs.read("companies/a.kek")
    assert data == b"one"
    assert blobs.replace("companies/a.kek", b"three", if_tag=tag)
    assert not blobs.replace("companies/a.kek", b"four", if_tag=tag)  # changed since read
    assert blobs.read("companies/a.kek")[0] == b"three"
    _data, tag = blobs.read("companies/a.kek")
    assert blobs.delete("companies/a.kek") and not blobs.delete("companies/a.kek")
    assert not blobs.replace("companies/a.kek", b"five", if_tag=tag)  # removed since read
    assert not blobs.exists("companies/a.kek")
    with pytest.raises(FileNotFoundError):
        blobs.read("companies/a.kek")
    blobs.create("companies/b.purged", b"{}")
    blobs.create("companies/deeper/c.kek", b"x")
    blobs.create("backup-control.key", b"x")
    assert blobs.names("companies") == ["b.purged"]


def test_a_bucket_makes_a_company_kek_once_when_processes_race(bucket_keys):
    """Two processes creating the same KEK at once (If-None-Match on the real server):
    one wins, the others are refused, and everyone then reads the winner's."""
    keyring.ensure_master_key()
    company_id = uuid.uuid4()
    made, refused = [], []
    start = threading.Barrier(8)

    def create():
        start.wait()
        try:
            made.append(keystore.create_kek(company_id))
        except KeyConfigurationError:
            refused.append(True)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len(refused) == 7
    assert keystore.load_kek(company_id) == made[0]
    assert keystore.load_or_create_kek(company_id) == (made[0], False)


# --- KEKs in the bucket -----------------------------------------------------------------------


def test_a_company_kek_is_made_loaded_and_destroyed_in_the_bucket(bucket_keys, keys_dir, company):
    name = f"keys/companies/{company.pk}.kek"
    stored = objects(bucket_keys)
    assert name in stored
    assert not (keys_dir / "companies").exists()  # nothing on this server's disk
    kek = keystore.load_kek(company.pk)
    for form in (kek, kek.hex().encode(), base64.b64encode(kek), base64.urlsafe_b64encode(kek).rstrip(b"=")):
        assert form not in stored[name]  # wrapped by the master key
    assert json.loads(stored[name])["company"] == str(company.pk)
    assert keystore.kek_companies() >= {company.pk} and keystore.has_kek(company.pk)
    with company_context(company):
        entry = log("x", "Alice Example")
    key = backup_keys.company_backup_key(company.pk)
    fresh()  # another server, same bucket
    assert read_summary(company, entry.pk) == "Alice Example"
    assert backup_keys.company_backup_key(company.pk) == key

    assert keyring.destroy_kek(company.pk)
    stored = objects(bucket_keys)
    assert name not in stored and f"keys/companies/{company.pk}.purged" in stored
    assert keystore.is_purged(company.pk) and keystore.purged_companies() == {company.pk}
    assert company.pk not in keystore.kek_companies() and not keystore.has_kek(company.pk)
    fresh()
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(company.pk)
    with pytest.raises(KeyUnavailable):
        backup_keys.company_backup_key(company.pk)
    with pytest.raises(KeyUnavailable):
        keystore.create_kek(company.pk)  # a purged id never gets keys again
    assert not keyring.destroy_kek(company.pk)  # idempotent


def test_a_kek_object_swapped_for_another_companys_fails_closed(bucket_keys, company):
    other = make_company("Other Hiring")
    with company_context(company):
        entry = log("x", "Alice Example")
    blobs = keystore.store()
    mine, theirs = keystore.kek_name(company.pk), keystore.kek_name(other.pk)
    original, _tag = blobs.read(mine)
    other_backup_key = backup_keys.company_backup_key(other.pk)

    client, bucket = bucket_keys  # the other company's object copied under this company's name
    client.copy_object(Bucket=bucket, Key=f"keys/{mine}", CopySource={"Bucket": bucket, "Key": f"keys/{theirs}"})
    fresh()
    with pytest.raises(DecryptionError):
        keyring.keys_for(company.pk)
    with pytest.raises(DecryptionError):
        backup_keys.company_backup_key(company.pk)
    with pytest.raises(DecryptionError):
        read_summary(company, entry.pk)

    fields = json.loads(blobs.read(theirs)[0])  # ... and relabelled as this company's
    fields["company"] = str(company.pk)
    blobs.replace(mine, json.dumps(fields).encode())
    fresh()
    with pytest.raises(DecryptionError):
        keyring.keys_for(company.pk)

    blobs.replace(mine, b"\x00" * 32)  # not even a key file
    fresh()
    with pytest.raises(DecryptionError):
        keyring.keys_for(company.pk)

    blobs.replace(mine, original)
    fresh()
    assert read_summary(company, entry.pk) == "Alice Example"
    assert backup_keys.company_backup_key(other.pk) == other_backup_key


def test_an_unreachable_bucket_is_never_taken_for_a_missing_key(bucket_keys, settings, company):
    kek, bucket_url = keystore.load_kek(company.pk), settings.VOUCH_KEY_STORE_URL
    settings.VOUCH_KEY_STORE_URL = "s3://nowhere/keys?endpoint=http://127.0.0.1:9&region=us-east-1"
    fresh()
    for attempt in (keystore.load_kek, keystore.load_or_create_kek, keystore.is_purged, keyring.keys_for):
        with pytest.raises(keyblobs.KeyStoreUnavailable):
            attempt(company.pk)
    with pytest.raises(keyblobs.KeyStoreUnavailable):
        backup_keys.control_backup_key()
    settings.VOUCH_KEY_STORE_URL = bucket_url
    assert keystore.load_kek(company.pk) == kek  # nothing was made in its place


def test_the_control_backup_key_is_one_for_every_server_sharing_the_bucket(bucket_keys, keys_dir):
    key = backup_keys.control_backup_key()
    assert "keys/backup-control.key" in objects(bucket_keys)
    assert not (keys_dir / "backup-control.key").exists()
    fresh()
    assert backup_keys.control_backup_key() == key


def test_a_bad_key_store_url_is_a_clear_configuration_error(settings, keys_dir):
    settings.VOUCH_KEY_STORE_URL = "s3:///no-bucket"
    with pytest.raises(KeyConfigurationError, match="VOUCH_KEY_STORE_URL"):
        keystore.store()


# --- Master rotation, adoption, status --------------------------------------------------------


def test_master_rotation_rewraps_the_objects_in_the_bucket(bucket_keys, keys_dir, company):
    with company_context(company):
        entry = log("x", "Alice Example")
    company_key, control_key = backup_keys.company_backup_key(company.pk), backup_keys.control_backup_key()
    inner_before = {r.pk: outer_layer(r) for r in DataKey.objects.filter(company=company)}
    names = (f"keys/{keystore.kek_name(company.pk)}", "keys/backup-control.key")
    before = objects(bucket_keys)
    assert [json.loads(before[n])["master_version"] for n in names] == [1, 1]
    assert keystore.master_versions_in_use() == {1: 2}

    result = rotate_master(batch_size=5)

    assert result["retired"] == [1] and result["key_files"] == {"rewrapped": 2}
    after = objects(bucket_keys)
    assert [json.loads(after[n])["master_version"] for n in names] == [2, 2]
    assert all(after[n] != before[n] for n in names)
    assert keystore.master_versions_in_use() == {2: 2}
    assert not (keys_dir / "master-000001.key").exists()
    fresh()
    assert {r.pk: outer_layer(r) for r in DataKey.objects.filter(company=company)} == inner_before
    assert read_summary(company, entry.pk) == "Alice Example"
    assert backup_keys.company_backup_key(company.pk) == company_key
    assert backup_keys.control_backup_key() == control_key


def test_master_rotation_keeps_a_version_a_kek_object_still_needs(bucket_keys, keys_dir, company):
    other = make_company("Other Hiring")
    blobs = keystore.store()
    fields = json.loads(blobs.read(keystore.kek_name(other.pk))[0])
    fields["wrapped"] = base64.b64encode(b"\0" * 60).decode()  # altered: does not unwrap
    blobs.replace(keystore.kek_name(other.pk), json.dumps(fields).encode())

    result = rotate_master()

    assert result["key_files"] == {"rewrapped": 1, "unreadable": 1}
    assert result["retired"] == [] and result["still_used"] == {1: 1}
    assert (keys_dir / "master-000001.key").exists()


def test_existing_companies_get_their_keks_in_the_bucket(bucket_keys, capsys, company):
    with company_context(company):
        entry = log("x", "Alice Example")
    to_old_scheme(company.pk)
    (old,) = bulk_companies(1, old_scheme=True)
    (purged,) = bulk_companies(1, old_scheme=True)
    keyring.destroy_kek(purged)
    fresh()
    assert cli.main(["keys", "status"]) == 1
    assert "PROBLEM: 3 companies have keys wrapped by the master key only" in capsys.readouterr().out

    result = kek_adoption.adopt_company_keks()

    assert result["companies"] == 2 and result["kek_created"] == 2 and result["purged"] == [str(purged)]
    assert "bucket" in " ".join(kek_adoption.describe(result))
    assert keystore.kek_companies() == {company.pk, old}
    assert set(DataKey.objects.exclude(company_id=purged).values_list("scheme", flat=True)) == {KeyScheme.COMPANY_KEK}
    fresh()
    assert read_summary(company, entry.pk) == "Alice Example"
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(purged)


def test_keys_status_reads_the_bucket(bucket_keys, capsys, company):
    assert cli.main(["keys", "status", "--company", str(company.pk)]) == 0
    out = capsys.readouterr().out
    assert next(r for r in out.splitlines() if r.startswith(str(company.pk))).split()[-1] == "present"
    keystore.store().delete(keystore.kek_name(company.pk))
    assert cli.main(["keys", "status"]) == 1
    out = capsys.readouterr().out
    assert "1 missing" in out and f"key-encryption key in the key store ({company.pk})" in out


def test_a_directory_key_store_copied_into_a_bucket_opens_there(keys_dir, settings, s3_server, s3_bucket):
    """What docs/object-storage.md tells an operator moving to several servers: copy the
    key store's blobs into the bucket's prefix as they are."""
    company = make_company("Moving Hiring")
    with company_context(company):
        entry = log("x", "Alice Example")
    control_key = backup_keys.control_backup_key()
    directory = keystore.store()
    settings.VOUCH_KEY_STORE_URL = s3_server.url(s3_bucket, "keys")
    bucket = keystore.store()
    for name in [keystore.CONTROL_BACKUP_FILE] + [f"companies/{n}" for n in directory.names("companies")]:
        assert bucket.create(name, directory.read(name)[0])
    (keys_dir / "companies").rename(keys_dir / "moved-away")
    fresh()
    assert read_summary(company, entry.pk) == "Alice Example"
    assert backup_keys.control_backup_key() == control_key


def test_a_bad_key_store_url_stops_the_system_checks(settings, keys_dir):
    from vouch.vault import checks

    assert checks.key_store(None) == []
    settings.VOUCH_KEY_STORE_URL = "s3://bucket/keys?endpoint=http://x&colour=blue"
    (error,) = checks.key_store(None)
    assert error.id == "vault.E012" and "colour" in error.msg


def test_a_page_needing_keys_while_the_key_store_is_out_is_a_503_not_a_500(bucket_keys, settings, company, owner):
    from vouch.references import services as references

    with company_context(company):
        references.create_candidate("Siobhán O'Brien", "siobhan@example.com", "07700 900123")
    client = HTTPSClient()
    client.force_login(owner.user)
    assert client.get("/candidates/").status_code == 200
    settings.VOUCH_KEY_STORE_URL = "s3://nowhere/keys?endpoint=http://127.0.0.1:9&region=us-east-1"
    fresh()
    page = client.get("/candidates/")
    assert page.status_code == 503
    assert page["Retry-After"] == "60"
    assert "Siobh" not in page.content.decode()
