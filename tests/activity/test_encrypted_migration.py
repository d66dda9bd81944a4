"""Activity migration 0002: a company's plaintext entries become encrypted ones.

A company database is taken back to ``activity.0001_initial`` and given entries
written the old way (raw SQL, plaintext columns, integer ids), then migrated forward
the way ``vouch tenants migrate`` does it: each company in its own company context
(:func:`vouch.tenancy.operations.migrate.migrate_one`, the task the command's
workers run; the last test runs the command itself). The entries must come back
with the same text and times, and no column may still hold the plaintext. Migrated
outside a company context, a database with entries must refuse with the
migration's own message and be left as it was. Runs on both paths (SQLite files;
a PostgreSQL database per company)."""

from __future__ import annotations

import json
import secrets
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from django.db import connections as django_connections
from django.db import models
from django.db.migrations.executor import MigrationExecutor

from tests.accounts.helpers import fast_company
from vouch.activity.models import Entry
from vouch.core.context import alias_for, company_context, current_or_none
from vouch.tenancy import connections, regions, schema
from vouch.tenancy.operations import migrate

pytestmark = pytest.mark.django_db

BEFORE = ("activity", "0001_initial")
ENCRYPTING = "activity.0002_encrypted_entries"
REFUSAL = (
    "activity entries must be encrypted with their company's key: migrate company databases "
    "with `vouch tenants migrate`"
)
# More than the migration copies at a time, so a second, partly filled batch is written too.
ROWS = import_module("vouch.activity.migrations.0002_encrypted_entries").COPY_BATCH + 7
STARTED = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def legacy_rows(count: int = ROWS) -> list[dict]:
    """Entries as the old schema held them: names, emails and phone numbers in plain
    text (a marker of this run in each, so a match can only come from these rows)."""
    marker = secrets.token_hex(6)
    rows = []
    for i in range(count):
        rows.append(
            {
                # Distinct, in the past, with microseconds: a copy must keep them exactly.
                "occurred_at": STARTED + timedelta(minutes=i, microseconds=i),
                "actor_id": None if i % 5 == 0 else 1000 + i,
                "actor_name": "" if i % 5 == 0 else f"Zoë Núñez-{marker}-{i}",
                "action": "role_changed" if i % 2 else "member_invited",
                "summary": f"ada.lovelace.{marker}.{i}@example.com was invited as Viewer",
                "details": {} if i % 7 == 0 else {"phone": f"+44 7700 9{i:05d}", "who": f"Grace {marker} {i}"},
            }
        )
    return rows


def plaintexts(rows: list[dict]) -> list[bytes]:
    """What must not be found in the columns once encrypted."""
    found = []
    for row in rows:
        found.append(row["summary"].encode())
        if row["actor_name"]:
            found.append(row["actor_name"].encode())
        for value in row["details"].values():
            found.append(value.encode())
    return found


FIELDS = ("occurred_at", "actor_id", "actor_name", "action", "summary", "details")


def entry_dict(entry: Entry) -> dict:
    return {name: getattr(entry, name) for name in FIELDS}


def _comparable(name: str, value):
    if name == "occurred_at" and isinstance(value, str):  # from JSON
        return datetime.fromisoformat(value)
    if name == "details":
        return json.dumps(value, sort_keys=True)
    return value


def as_read(rows) -> list[tuple]:
    """Rows comparable whatever their order (times as datetimes, details as JSON)."""
    return sorted(tuple(_comparable(name, row[name]) for name in FIELDS) for row in rows)


def applied(alias: str) -> set[str]:
    executor = MigrationExecutor(django_connections[alias])
    return {f"{app}.{name}" for app, name in executor.loader.applied_migrations if app == "activity"}


def table_names(alias: str) -> set[str]:
    return set(django_connections[alias].introspection.table_names())


def insert_legacy(alias: str, rows: list[dict]) -> None:
    """Write ``rows`` into the 0001 table with SQL, as the old code's rows sit there."""
    connection = django_connections[alias]
    when, details = models.DateTimeField(), models.JSONField()
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO activity_entry (occurred_at, actor_id, actor_name, action, summary, details) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (
                    when.get_db_prep_value(row["occurred_at"], connection),
                    row["actor_id"],
                    row["actor_name"],
                    row["action"],
                    row["summary"],
                    details.get_db_prep_value(row["details"], connection),
                )
                for row in rows
            ],
        )


def raw_columns(alias: str, table: str = "activity_entry") -> list[tuple]:
    with django_connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - a constant table name
        return cursor.fetchall()


def column_bytes(rows: list[tuple]) -> bytes:
    """Every value of every row as stored: binary as it is, anything else as its text."""
    return b"\x00".join(
        bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()
        for row in rows
        for value in row
    )


def make_legacy_company(rows: list[dict]):
    """A company whose database is at activity 0001 and holds ``rows``, plaintext."""
    company = fast_company(f"Legacy {secrets.token_hex(3)}")
    with company_context(company) as context:
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        assert applied(alias) == {"activity.0001_initial"}
        insert_legacy(alias, rows)
        # Control: the old columns really hold the plaintext the checks look for.
        stored = column_bytes(raw_columns(alias))
        assert all(text in stored for text in plaintexts(rows))
    return company


def migrate_schema(alias: str) -> None:
    """What migrating one company database runs (``vouch tenants migrate``'s workers too)."""
    schema.migrate(alias)


def test_tenants_migrate_encrypts_legacy_entries_with_the_same_text():
    rows = legacy_rows()
    company = make_legacy_company(rows)
    result = migrate.migrate_one(str(company.pk), company.name, company.region)
    assert (result.outcome, result.applied, result.reason) == (migrate.MIGRATED, [ENCRYPTING], "")

    with company_context(company) as context:
        alias = connections.ensure_alias(context)
        assert applied(alias) == {"activity.0001_initial", ENCRYPTING}
        assert "activity_legacyentry" not in table_names(alias)
        entries = list(Entry.objects.all())
        # Every entry, with the same text, actor and time; each under a fresh uuid.
        assert as_read(entry_dict(e) for e in entries) == as_read(rows)
        assert len({e.pk for e in entries}) == len(rows) and all(isinstance(e.pk, uuid.UUID) for e in entries)
        # The log's own order is still the order the entries were written in.
        assert [e.summary for e in entries] == [r["summary"] for r in reversed(rows)]
        stored = raw_columns(alias)
    assert len(stored) == len(rows)
    leaked = [text for text in plaintexts(rows) if text in column_bytes(stored)]
    assert not leaked, f"{len(leaked)} plaintext values still in the columns, e.g. {leaked[0]!r}"

    region = regions.get(company.region)
    if not region.uses_postgresql:
        # The dropped plaintext table must not live on in the file's free pages or its
        # write-ahead log either (SQLite overwrites deleted content with secure_delete).
        path = connections.sqlite_path(company.pk, region)
        on_disk = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))
        assert not [text for text in plaintexts(rows) if text in on_disk]

    again = migrate.migrate_one(str(company.pk), company.name, company.region)
    assert again.outcome == migrate.CURRENT


def test_migrating_legacy_entries_outside_a_company_context_is_refused_and_changes_nothing():
    rows = legacy_rows(12)
    company = make_legacy_company(rows)
    # The company's own database, reached without its company context (as a plain
    # `migrate --database` would): the identity check passes, no company is current.
    alias = alias_for(company.pk)
    connections.add_alias(alias, connections.database_settings(company.pk, company.region, admin=True))
    try:
        assert current_or_none() is None
        with pytest.raises(RuntimeError) as refused:
            migrate_schema(alias)
        assert str(refused.value) == REFUSAL
        # Rolled back whole: still at 0001, the old table with every row, nothing new.
        assert applied(alias) == {"activity.0001_initial"}
        assert "activity_legacyentry" not in table_names(alias)
        assert len(raw_columns(alias)) == len(rows)
    finally:
        connections.release(alias)

    # Then the right way still works.
    result = migrate.migrate_one(str(company.pk), company.name, company.region)
    assert result.outcome == migrate.MIGRATED, result.reason
    with company_context(company):
        assert sorted(e.summary for e in Entry.objects.all()) == sorted(r["summary"] for r in rows)


def test_a_database_without_entries_migrates_outside_a_company_context():
    """Control for the refusal: it is about plaintext rows needing a key, not about
    the context itself (a region's template is migrated outside any company)."""
    company = make_legacy_company([])
    alias = alias_for(company.pk)
    connections.add_alias(alias, connections.database_settings(company.pk, company.region, admin=True))
    try:
        migrate_schema(alias)
        assert applied(alias) == {"activity.0001_initial", ENCRYPTING}
    finally:
        connections.release(alias)


# --- The command itself, in processes of its own --------------------------------------------


SEED = textwrap.dedent(
    """
    import json
    from django.db import connections as django_connections
    from django.db.migrations.executor import MigrationExecutor
    from vouch.accounts.models import User
    from vouch.tenancy import connections, regions, schema
    from vouch.core.context import company_context
    from vouch.tenancy.services import create_company
    from tests.activity.test_encrypted_migration import BEFORE, insert_legacy, legacy_rows

    owner = User.objects.create_user("legacy@example.com", "a long enough password 123")
    company = create_company("Legacy Ltd", "eu", owner)
    rows = legacy_rows({count})
    with company_context(company) as context:
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        insert_legacy(alias, rows)
    for row in rows:
        row["occurred_at"] = row["occurred_at"].isoformat()
    print(json.dumps({{"company": str(company.pk), "rows": rows}}))
    """
)

READ = textwrap.dedent(
    """
    import json
    from vouch.activity.models import Entry
    from vouch.tenancy import connections, regions, schema
    from vouch.core.context import company_context
    from vouch.tenancy.models import Company
    from tests.activity.test_encrypted_migration import entry_dict, raw_columns

    with company_context(Company.objects.get(pk="{company}")) as context:
        entries = [entry_dict(entry) for entry in Entry.objects.all()]
        raw = raw_columns(connections.ensure_alias(context))
    for entry in entries:
        entry["occurred_at"] = entry["occurred_at"].isoformat()
    # Every column of every row as stored, as hex: binary as it is, anything else as text.
    raw = [(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode()).hex() for row in raw for v in row]
    print(json.dumps({{"entries": entries, "raw": raw}}))
    """
)


def shell_json(server, script: str):
    """What ``script`` printed last, run by ``vouch manage shell`` (which may print
    a line of its own first)."""
    return json.loads(server.vouch("manage", "shell", "-c", script).stdout.strip().splitlines()[-1])


def test_vouch_tenants_migrate_encrypts_a_companys_legacy_entries():
    """`vouch tenants migrate` itself: its worker processes, each company in its
    context, the master key of a real installation."""
    from tests.live import ROOT, cleanup, make_server

    server = make_server({"PYTHONPATH": str(ROOT)})  # the scripts below use this module's helpers
    try:
        server.vouch("migrate")
        seeded = shell_json(server, SEED.format(count=40))
        listing = json.loads(server.vouch("tenants", "list", "--json").stdout)
        assert [(row["id"], row["schema"]) for row in listing] == [(seeded["company"], "behind 1")]

        run = server.vouch("tenants", "migrate", "--workers", "1", check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 company: 0 already current, 1 migrated, 0 failed." in run.stdout, run.stdout
        listing = json.loads(server.vouch("tenants", "list", "--json").stdout)
        assert [row["schema"] for row in listing] == ["current"]

        read = shell_json(server, READ.format(company=seeded["company"]))
        assert as_read(read["entries"]) == as_read(seeded["rows"])
        stored = b"\x00".join(bytes.fromhex(value) for value in read["raw"])
        leaked = [text for text in plaintexts(seeded["rows"]) if text in stored]
        assert not leaked, leaked[:3]
    finally:
        cleanup(server)
