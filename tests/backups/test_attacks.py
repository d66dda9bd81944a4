"""Backup sets refuse what was not written as they are: altered, truncated, swapped
between companies or positions, renamed to another time, incomplete, or without a key."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files
from vouch.backups.models import BackupStatus
from vouch.backups.sets import (
    BackupDamaged,
    BackupIncomplete,
    BackupKeyMissing,
    company_prefix,
    company_target,
    list_sets,
    open_set,
    write_company_set,
)
from vouch.objectstore import open_store
from vouch.vault import keyring

pytestmark = pytest.mark.django_db

FILES = {"attachments/one.pdf": b"1" * 150_000, "attachments/two.pdf": b"2" * 1000}


@pytest.fixture
def taken(backup_dir):
    company = fast_company()
    add_files(company, FILES)
    row = write_company_set(company)
    assert row.status == BackupStatus.COMPLETE, row.error
    store = open_store(company_target(company.region))
    set_dir = backup_dir / "regions" / company.region / row.location
    return company, row, store, set_dir


def file_number(store, location, name):
    return next(e["number"] for e in open_set(store, location).manifest["objects"] if e.get("name") == name)


def test_one_flipped_byte_in_an_object_is_refused_and_named(taken, tmp_path):
    company, row, store, set_dir = taken
    number = file_number(store, row.location, "attachments/one.pdf")
    path = set_dir / "objects" / str(number)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(BackupDamaged) as caught:
        open_set(store, row.location).extract(tmp_path / "out")
    assert caught.value.what == f"object {number} (file attachments/one.pdf)"
    assert "failed authentication" in caught.value.detail
    # Nothing unverified is left behind under the file's name.
    assert not (tmp_path / "out" / "files" / "attachments" / "one.pdf").exists()


def test_a_truncated_object_is_refused(taken):
    company, row, store, set_dir = taken
    path = set_dir / "objects" / "0"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(BackupDamaged, match=r"object 0 \(the database\).*truncated"):
        open_set(store, row.location).verify()


def test_an_object_moved_to_another_position_is_refused(taken):
    company, row, store, set_dir = taken
    one = file_number(store, row.location, "attachments/one.pdf")
    two = file_number(store, row.location, "attachments/two.pdf")
    shutil.copy(set_dir / "objects" / str(one), set_dir / "objects" / str(two))
    with pytest.raises(BackupDamaged, match=f"object {two} "):
        open_set(store, row.location).verify()


def test_an_object_from_another_set_of_the_same_company_is_refused(taken):
    company, row, store, set_dir = taken
    later = write_company_set(company)
    later_dir = set_dir.parent / later.location.rsplit("/", 1)[1]
    shutil.copy(set_dir / "objects" / "0", later_dir / "objects" / "0")
    with pytest.raises(BackupDamaged, match=r"object 0 \(the database\)"):
        open_set(store, later.location).verify()


def test_a_missing_object_is_refused(taken):
    company, row, store, set_dir = taken
    (set_dir / "objects" / "1").unlink()
    with pytest.raises(BackupDamaged, match="object 1 .*missing"):
        open_set(store, row.location).verify()


def test_an_altered_manifest_is_refused(taken):
    company, row, store, set_dir = taken
    path = set_dir / "manifest"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(BackupDamaged, match="manifest: failed authentication"):
        open_set(store, row.location)


def test_a_set_copied_under_another_company_is_refused(taken, backup_dir):
    company, row, store, set_dir = taken
    other = fast_company(region=company.region)
    # Company A's set, under B's prefix with its own name: what an attacker with write
    # access to the bucket could do to give B A's data (or B's restore A's).
    moved = f"{company_prefix(other.pk)}{row.location.rsplit('/', 1)[1]}"
    shutil.copytree(set_dir, backup_dir / "regions" / company.region / moved)
    with pytest.raises(BackupDamaged, match="company id is .* but it is stored as .*swapped"):
        open_set(store, moved)

    # And with the clear header rewritten to claim B: the key is B's, nothing authenticates.
    manifest = backup_dir / "regions" / company.region / moved / "manifest"
    sealed = manifest.read_bytes()
    length = int.from_bytes(sealed[5:9], "big")
    header = json.loads(sealed[9 : 9 + length])
    header["company_id"] = str(other.pk)
    new_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    manifest.write_bytes(sealed[:5] + len(new_header).to_bytes(4, "big") + new_header + sealed[9 + length :])
    with pytest.raises(BackupDamaged, match=f"failed authentication under company {other.pk}'s backup key"):
        open_set(store, moved)


def test_an_old_set_renamed_to_look_newer_is_refused(taken, backup_dir):
    company, row, store, set_dir = taken
    name = row.location.rsplit("/", 1)[1]
    newer = f"{company_prefix(company.pk)}29991231T235959Z{name[16:]}"
    shutil.copytree(set_dir, backup_dir / "regions" / company.region / newer)
    with pytest.raises(BackupDamaged, match="taken at is '.*' but it is stored as '29991231T235959Z'.*renamed"):
        open_set(store, newer)


def test_a_set_without_its_manifest_is_incomplete_and_listed_so(taken):
    company, row, store, set_dir = taken
    (set_dir / "manifest").unlink()
    [info] = list_sets(store, company_prefix(company.pk))
    assert not info.complete
    with pytest.raises(BackupIncomplete):
        open_set(store, row.location)


def test_a_wrong_key_opens_nothing(taken):
    company, row, store, set_dir = taken
    with pytest.raises(BackupDamaged, match="manifest: failed authentication"):
        open_set(store, row.location, key=b"k" * 32)


def test_a_purged_companys_set_cannot_be_opened(taken):
    company, row, store, set_dir = taken
    keyring.shred(company.pk)
    with pytest.raises(BackupKeyMissing, match="cannot be opened"):
        open_set(store, row.location)


def test_a_set_claimed_for_another_region_is_refused(taken):
    company, row, store, set_dir = taken
    with pytest.raises(BackupDamaged, match="region"):
        open_set(store, row.location, region="us" if company.region != "us" else "eu")
