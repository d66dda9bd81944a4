"""Backup sets: what is in one, and that it comes back exactly (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files
from vouch import regions
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
from vouch.tenancy import connections, provisioning

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
    root = regions.files_dir(company.pk, company.region)
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


def test_the_control_set_records_the_security_logs_chain_head(committed_chain, backup_dir, tmp_path):
    from vouch.audit import record
    from vouch.audit.models import EventAction
    from vouch.audit.verify import current_head
    from vouch.backups.sets import control_prefix, control_target, latest_set, write_control_set

    record(EventAction.SYS_STARTUP)
    seq, hash_ = current_head()

    row = write_control_set()

    assert row.status == BackupStatus.COMPLETE, row.error
    store = open_store(control_target())
    assert control_target().endswith("/control")
    info = latest_set(store, control_prefix())
    opened = open_set(store, info.location)
    assert opened.manifest["scope"] == "control" and opened.manifest["company_id"] == ""
    assert opened.manifest["chain_head"] == {"seq": seq, "hash": hash_, "authentic": True}
    assert opened.manifest["row_counts"]["audit_securityevent"] >= 1
    extracted = opened.extract(tmp_path / "control")
    if opened.manifest["database"]["kind"] == "sqlite":
        with sqlite3.connect(extracted.database) as db:
            assert db.execute("SELECT seq, hash FROM audit_chainhead").fetchone() == (seq, hash_)
    else:
        listing = subprocess.run(["pg_restore", "--list", str(extracted.database)], capture_output=True, text=True)
        assert listing.returncode == 0 and "audit_chainhead" in listing.stdout


def test_a_companys_backups_reach_only_its_regions_target(backup_dir):
    eu = fast_company("Euro GmbH", region="eu")
    us = fast_company("Yankee Inc", region="us")
    add_files(eu, {"attachments/eu.pdf": b"e" * 5000})

    assert write_company_set(eu).status == BackupStatus.COMPLETE
    assert write_company_set(us).status == BackupStatus.COMPLETE

    us_store = open_store(company_target("us"))
    us_keys = [info.key for info in us_store.list("")]
    assert us_keys and all(key.startswith(company_prefix(us.pk)) for key in us_keys)
    assert not any(str(eu.pk) in key for key in us_keys)
    eu_keys = [info.key for info in open_store(company_target("eu")).list("")]
    assert eu_keys and all(key.startswith(company_prefix(eu.pk)) for key in eu_keys)
    # Nothing of eu's anywhere outside eu's target (its files: one more object than us's set).
    outside = [p for p in backup_dir.rglob("*") if p.is_file() and str(eu.pk) in str(p)]
    assert outside and all(str(p).startswith(str(backup_dir / "regions" / "eu")) for p in outside)


def test_sets_on_a_real_s3_server(settings, tmp_path, s3_server, s3_bucket):
    from tests.backups.conftest import point_targets

    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    point_targets(settings, s3_server.url(s3_bucket, "backups"))
    eu = fast_company(region="eu")
    us = fast_company(region="us")
    add_files(eu, {"attachments/big.bin": bytes(range(256)) * 40_000})  # 10 MB: multipart, streamed

    assert write_company_set(eu).status == BackupStatus.COMPLETE
    assert write_company_set(us).status == BackupStatus.COMPLETE

    us_store = open_store(company_target("us"))
    assert all(str(eu.pk) not in info.key for info in us_store.list(""))
    eu_store = open_store(company_target("eu"))
    [info] = list_sets(eu_store, company_prefix(eu.pk))
    extracted = open_set(eu_store, info.location, region="eu").extract(tmp_path / "out")
    stored = regions.files_dir(eu.pk, "eu") / "attachments" / "big.bin"
    assert (extracted.files_dir / "attachments" / "big.bin").read_bytes() == stored.read_bytes()
    # Everything written to the bucket is under the backups prefix, in the two regions' places.
    keys = [info.key for info in open_store(s3_server.url(s3_bucket)).list("")]
    assert keys and all(k.startswith(("backups/regions/eu/companies/", "backups/regions/us/companies/")) for k in keys)
