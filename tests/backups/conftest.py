"""Fixtures of the backup tests: backup targets and a spool of the test's own."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from tests.audit.conftest import committed_chain  # noqa: F401  (a fixture, for tests that commit events)
from vouch.objectstore import join


def point_targets(settings, base: str) -> None:
    """Every region's backup target, and the control database's, under ``base``."""
    settings.VOUCH_BACKUP_URL = base
    config = settings.VOUCH_REGION_CONFIG
    settings.VOUCH_REGION_CONFIG = {
        name: entry | {"backup_url": join(base, "regions", name)} for name, entry in config.items()
    }


@pytest.fixture
def backup_dir(settings, tmp_path):
    """Backups into a directory of this test's own; the spool too."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    point_targets(settings, str(tmp_path / "backups"))
    return tmp_path / "backups"


def add_files(company, contents: dict[str, bytes]) -> None:
    """Save files into the company's encrypted storage, as uploads are saved."""
    from vouch.core.context import company_context
    from vouch.vault.files import encrypted_storage

    with company_context(company):
        for name, data in contents.items():
            encrypted_storage.save(name, ContentFile(data))


def company_sql(company, sql: str, params=()) -> list:
    """Run SQL in the company's own database, whatever it is (SQLite file or PostgreSQL),
    as the table's owner would: for tests that tamper with a database directly."""
    from django.db import connections as django_connections

    from vouch.core.context import alias_for, company_context
    from vouch.tenancy.models import Company

    with (
        company_context(Company.objects.get(pk=company.pk), offline_ok=True),
        django_connections[alias_for(company.pk)].cursor() as cursor,
    ):
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def admin_sql(company, sql: str, params=()) -> None:
    """SQL in the company's database as the installation's own account (on PostgreSQL the
    company's role may not change every table, e.g. the identity row); SQLite: the file."""
    import sqlite3

    from vouch.tenancy import connections, provisioning, regions

    region = regions.get(company.region)
    if region.uses_postgresql:
        with provisioning._admin(region, dbname=connections.postgres_name(company.pk)) as admin:
            admin.execute(sql, params)
    else:
        with sqlite3.connect(connections.sqlite_path(company.pk, region)) as db:
            db.execute(sql.replace("%s", "?"), params)


def lose_database(company) -> None:
    """The company's database is gone (a lost disk, a mistaken drop)."""
    from vouch.core.context import alias_for
    from vouch.tenancy import connections, provisioning, regions

    region = regions.get(company.region)
    connections.release(alias_for(company.pk))
    if region.uses_postgresql:
        with provisioning._admin(region) as admin:
            admin.execute(f'DROP DATABASE "{connections.postgres_name(company.pk)}" WITH (FORCE)')
    else:
        connections.sqlite_path(company.pk, region).unlink()


def count_rows(database, table: str, region=None) -> int:
    """Rows of ``table`` in a restored copy: an SQLite file, or a pg_dump (restored into a
    scratch database for the count)."""
    from vouch.backups import checks

    with checks.opened(database, region) as (cursor, _vendor):
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a test's constant)
        return int(cursor.fetchone()[0])


def kept_rows(company, rollback, table: str) -> int:
    """Rows of ``table`` in the state an in-place restore kept aside in ``rollback``."""
    import json

    from vouch.tenancy import provisioning, regions

    region = regions.get(company.region)
    if not region.uses_postgresql:
        return count_rows(rollback / "database.sqlite3", table)
    kept = json.loads((rollback / "restore.json").read_text())["database"]
    with provisioning._admin(region, dbname=kept) as admin:
        return int(admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
