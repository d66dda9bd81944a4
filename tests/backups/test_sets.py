"""Backup sets: what is in one, and that it comes back exactly (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files
from vouch.backups.models import BackupStatus
from vouch.backups.sets import (
    company_prefix,
    company_target,
    facts_of,
    list_sets,
    open_set,
    schema_version,
    write_company_set,
)
from vouch.objectstore import open_store
from vouch.tenancy import connections, provisioning, regions

pytestmark = pytest.mark.django_db


def live_facts(company):
    region = regions.get(company.region)
    if region.uses_postgresql:
        with provisioning._admin(region, dbname=connections.postgres_name(company.pk)) as admin:
            return facts_of(admin.cursor(), "pg_dump")
    with sqlite3.connect(connections.sqlite_path(company.pk, region)) as db:
        return facts_of(db.cursor(), "sqlite")


def test_a_company_set_holds_its_database_and_files_and_comes_back_verified(backup_dir, tmp_path):
    company = fast_company("Backed Up Ltd")
    files = {"attachments/cv.pdf": b"%PDF-1.4 " + b"x" * 200_000, "reports/r.txt": b"report"}
    add_files(company, files)

    row = write_company_set(company)

    assert row.status == BackupStatus.COMPLETE, row.error
    store = open_store(company_target(company.region))
    [info] = list_sets(store, company_prefix(company.pk))
    assert info.complete and info.location == row.location and info.set_id == row.pk
    opened = open_set(store, info.location, region=company.region)
    manifest = opened.manifest
    assert manifest["company_id"] == str(company.pk)
    assert manifest["region"] == company.region
    assert manifest["set_id"] == str(row.pk)
    live = live_facts(company)
    assert manifest["row_counts"] == live.row_counts
    assert manifest["row_counts"]["vouch_company_identity"] == 1
    assert manifest["migrations"] == live.migrations
    assert manifest["schema_version"] == schema_version(live.migrations) == row.schema_version
    assert sorted(e["name"] for e in manifest["objects"] if e["kind"] == "file") == sorted(files)

    extracted = opened.extract(tmp_path / "restored")

    # The files come back as stored: still encrypted with the company's data key.
    root = provisioning.files_dir(company.pk, company.region)
    for name in files:
        assert (extracted.files_dir / name).read_bytes() == (root / name).read_bytes()
        assert files[name] not in (extracted.files_dir / name).read_bytes()
    if manifest["database"]["kind"] == "sqlite":
        with sqlite3.connect(extracted.database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("SELECT company_id FROM vouch_company_identity").fetchone() == (str(company.pk),)
    else:
        listing = subprocess.run(["pg_restore", "--list", str(extracted.database)], capture_output=True, text=True)
        assert listing.returncode == 0 and "vouch_company_identity" in listing.stdout


def test_nothing_readable_in_the_target_without_the_keys(backup_dir):
    company = fast_company("Secretive Name Ltd")
    add_files(company, {"attachments/a.txt": b"hello"})
    write_company_set(company)
    for path in backup_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Secretive" not in data and b"SQLite format" not in data and b"attachments" not in data
            assert b"vouch_company_identity" not in data and b"PGDMP" not in data
