"""Checks of a restored copy (a drill's, or before an in-place restore is trusted).

For a company: SQLite's ``PRAGMA integrity_check`` (on PostgreSQL: ``pg_restore`` into a
scratch database succeeding), the company id its identity row records, its applied
migrations against the manifest's, its row counts against the manifest's, a sample of
encrypted values opening under the company's key (vouch.vault.sealing), and every file's
chunks authenticating (vouch.vault.files). For the control database: integrity, and the
security log's chain verifying up to the manifest's head (``vouch audit verify
--expect-head``, run against the copy). Each check fails with :class:`CheckFailed`
naming what failed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

from vouch import regions
from vouch.config import DatabaseURL
from vouch.tenancy import connections, provisioning
from vouch.vault import sealing
from vouch.vault.errors import VaultError
from vouch.vault.fields import EncryptedField
from vouch.vault.files import decrypt_stream

SAMPLE_ROWS = 5  # rows per table whose encrypted values are opened


class CheckFailed(Exception):
    def __init__(self, check: str, message: str, what: str = ""):
        super().__init__(f"{check}: {message}")
        self.check, self.message, self.what = check, message, what


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def opened(database: Path, region=None):
    """A DB-API cursor on the copy: the SQLite file read-only, or (a pg_dump) a scratch
    PostgreSQL database the dump is restored into, dropped afterwards."""
    if database.suffix == ".sqlite3":
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
        try:
            yield connection.cursor(), "sqlite"
        finally:
            connection.close()
        return
    # imported here: vouch.backups.restore imports this one (cycle inside the app)
    from vouch.backups.restore import pg_restore_into

    scratch = f"{connections.postgres_name(uuid.uuid4())}_drill"
    try:
        pg_restore_into(region, database, scratch)
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed("restore", str(exc), "the database") from exc
    try:
        with provisioning._admin(region, dbname=scratch) as connection:
            yield connection.cursor(), "postgresql"
    finally:
        with provisioning._admin(region) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def integrity(cursor, vendor: str) -> str:
    if vendor != "sqlite":
        return "ok (pg_restore succeeded)"
    rows = cursor.execute("PRAGMA integrity_check").fetchall()
    if rows != [("ok",)]:
        raise CheckFailed("integrity", "; ".join(str(r[0]) for r in rows[:5]), "the database")
    return "ok"


def identity(cursor, company_id) -> str:
    try:
        cursor.execute(f"SELECT company_id FROM {connections.IDENTITY_TABLE}")  # noqa: S608
        rows = cursor.fetchall()
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed("company_id", f"no identity row ({exc})", "the database") from exc
    found = rows[0][0] if len(rows) == 1 else None
    if found != str(uuid.UUID(str(company_id))):
        raise CheckFailed("company_id", f"the database records company {found!r}, not {company_id}", "the database")
    return "ok"


def _tables(cursor, vendor: str) -> list[str]:
    if vendor == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(row[0] for row in cursor.fetchall())


def schema(cursor, manifest: dict) -> str:
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    found = [f"{app}.{name}" for app, name in cursor.fetchall()]
    expected = manifest.get("migrations")
    if expected is None:
        return "skipped (the manifest lists no migrations)"
    if sorted(found) != sorted(expected):
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        raise CheckFailed("schema", f"migrations differ from the manifest (missing {missing}, extra {extra})")
    return f"ok ({manifest.get('schema_version', len(found))})"


def row_counts(cursor, vendor: str, manifest: dict) -> str:
    expected = manifest.get("row_counts") or {}
    tables = set(_tables(cursor, vendor))
    for table, count in sorted(expected.items()):
        if table not in tables:
            raise CheckFailed("row_counts", f"table {table} is missing", f"table {table}")
        cursor.execute(f"SELECT count(*) FROM {_quote(table)}")  # noqa: S608  (names from the manifest, quoted)
        found = int(cursor.fetchone()[0])
        if found != int(count):
            raise CheckFailed("row_counts", f"table {table} has {found} rows, the manifest says {count}", table)
    return f"ok ({len(expected)} tables)"


def encrypted_sample(cursor, vendor: str, company_id, rows_per_table: int = SAMPLE_ROWS) -> str:
    """Open a random sample of each company table's encrypted values under the company's key."""
    from django.apps import apps
    from django.conf import settings

    company = uuid.UUID(str(company_id))
    tables = set(_tables(cursor, vendor))
    opened_values = 0
    for label in settings.VOUCH_COMPANY_APPS:
        for model in apps.get_app_config(label).get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
            if not fields or model._meta.db_table not in tables:
                continue
            pk = model._meta.pk
            columns = ", ".join(_quote(c) for c in [pk.column, *(f.column for f in fields)])
            cursor.execute(
                f"SELECT {columns} FROM {_quote(model._meta.db_table)} ORDER BY random() LIMIT {int(rows_per_table)}"  # noqa: S608
            )
            for raw_pk, *values in cursor.fetchall():
                row_id = pk.to_python(raw_pk)
                for field, value in zip(fields, values, strict=True):
                    if value is None:
                        continue
                    what = f"{model._meta.label_lower}.{field.name}:{row_id}"
                    try:
                        sealing.open_value(company, bytes(value), field.location, row_id, what=what)
                    except VaultError as exc:
                        raise CheckFailed("encrypted_values", str(exc), what) from exc
                    opened_values += 1
    return f"ok ({opened_values} values opened)"


def files(files_dir: Path | None, company_id) -> str:
    """Every file's chunks authenticate under the company's key (read to the end)."""
    if files_dir is None or not files_dir.exists():
        return "ok (0 files)"
    company = uuid.UUID(str(company_id))
    count = 0
    for path in sorted(files_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(files_dir).as_posix()
        try:
            with open(path, "rb") as handle:
                for _ in decrypt_stream(company, name, handle):
                    pass
        except VaultError as exc:
            raise CheckFailed("files", str(exc), f"file {name}") from exc
        count += 1
    return f"ok ({count} files)"


def check_company(fetched, company_id, region) -> dict[str, str]:
    results: dict[str, str] = {}
    with opened(fetched.database, region) as (cursor, vendor):
        results["integrity"] = integrity(cursor, vendor)
        results["company_id"] = identity(cursor, company_id)
        results["schema"] = schema(cursor, fetched.manifest)
        results["row_counts"] = row_counts(cursor, vendor, fetched.manifest)
        results["encrypted_values"] = encrypted_sample(cursor, vendor, company_id)
    results["files"] = files(fetched.files_dir, company_id)
    return results


def check_control(fetched, scratch: Path) -> dict[str, str]:
    """Integrity, then ``vouch audit verify --expect-head <manifest head>`` run against the
    copy (a data directory of its own, this installation's secret key)."""
    results: dict[str, str] = {}
    head = (fetched.manifest.get("chain_head") or {}).get("hash")
    if fetched.database.suffix != ".sqlite3":
        # A pg_dump: restored into a scratch database on the control database's server,
        # and `vouch audit verify` pointed at that database.
        region = control_server()
        with opened(fetched.database, region) as (cursor, vendor):
            results["integrity"] = integrity(cursor, vendor)
            results["row_counts"] = row_counts(cursor, vendor, fetched.manifest)
            scratch_url = _database_url(region.server, cursor.connection.info.dbname)
            results["chain"] = _verify_chain(scratch, head, {"VOUCH_DATABASE_URL": scratch_url})
        return results
    with opened(fetched.database) as (cursor, vendor):
        results["integrity"] = integrity(cursor, vendor)
        results["row_counts"] = row_counts(cursor, vendor, fetched.manifest)
    results["chain"] = verify_chain_of(fetched.database, scratch, head)
    return results


def control_server():
    """The control database's PostgreSQL server, as a region-like value for
    :func:`opened` (its connection settings, whichever database they name)."""
    from django.db import connection

    entry = connection.settings_dict
    server = DatabaseURL(
        engine="postgresql",
        name=entry["NAME"],
        user=entry.get("USER") or "",
        password=entry.get("PASSWORD") or "",
        host=entry.get("HOST") or "",
        port=str(entry.get("PORT") or ""),
    )
    return regions.Region(name="control", root=Path(), server=server)


def _database_url(server, name: str) -> str:
    from urllib.parse import quote

    auth = quote(server.user or "", safe="")
    if server.password:
        auth += ":" + quote(server.password, safe="")
    host = f"{server.host or 'localhost'}:{server.port or 5432}"
    return f"postgres://{auth}@{host}/{quote(name, safe='')}"


def verify_chain_of(database: Path, scratch: Path, head: str | None) -> str:
    data_dir = scratch / "data"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.replace(database, data_dir / "control.sqlite3")
    return _verify_chain(scratch, head, {})


def _verify_chain(scratch: Path, head: str | None, extra_env: dict[str, str]) -> str:
    """``vouch audit verify --expect-head`` in a process of its own, on the copy (a data
    directory of its own, this installation's secret key)."""
    from django.conf import settings

    data_dir = scratch / "data"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "vouch.settings",
        "VOUCH_DATA_DIR": str(data_dir),
        "VOUCH_SECRET_KEY": settings.SECRET_KEY,
        "VOUCH_LOG_LEVEL": "ERROR",
    } | extra_env
    command = [sys.executable, "-m", "vouch.cli", "audit", "verify", "--no-progress"]
    if head:
        command += ["--expect-head", head]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise CheckFailed("chain", (result.stderr or result.stdout).strip()[-500:], "the security log")
    return "ok" + (f" (head {head[:12]}… found)" if head else " (no head in the manifest)")
