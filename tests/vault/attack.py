"""What the attack tests share: raw access to stored ciphertext (as someone with the
database would have it), the integrity events a failed read must leave, and a scan of
the bytes an attacker could take away (database files, dumps, stored files).

Everything here reads and writes below Vouch's code (raw SQL, the files on disk,
pg_dump), so the tests see what is actually at rest, not what the ORM hands back."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection as control_connection
from django.db import connections

from vouch import regions
from vouch.audit.models import EventAction, SecurityEvent
from vouch.tenancy.connections import postgres_name, sqlite_path

# --- Raw ciphertext ------------------------------------------------------------


def _db_pk(alias: str, model, pk):
    return model._meta.pk.get_db_prep_value(pk, connections[alias])


def read_raw(alias: str, model, column: str, pk) -> bytes | None:
    """The bytes stored in ``column`` of ``model``'s row ``pk``, read with plain SQL."""
    conn = connections[alias]
    qn = conn.ops.quote_name
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} WHERE {qn(model._meta.pk.column)} = %s",  # noqa: S608
            [_db_pk(alias, model, pk)],
        )
        (value,) = cursor.fetchone()
    return None if value is None else bytes(value)


def write_raw(alias: str, model, column: str, pk, data: bytes) -> None:
    """Overwrite ``column`` of row ``pk`` with ``data``, bypassing Vouch entirely."""
    conn = connections[alias]
    qn = conn.ops.quote_name
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s WHERE {qn(model._meta.pk.column)} = %s",  # noqa: S608
            [conn.Database.Binary(data), _db_pk(alias, model, pk)],
        )
        assert cursor.rowcount == 1


def flip(data: bytes, index: int) -> bytes:
    """``data`` with one bit of byte ``index`` changed."""
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


def integrity_failures(company_id) -> list[SecurityEvent]:
    return list(
        SecurityEvent.objects.filter(company_id=company_id, action=EventAction.DATA_INTEGRITY_FAIL).order_by("seq")
    )


# --- What an attacker could take away ------------------------------------------


def _pg_conninfo(server, dbname: str) -> tuple[list[str], dict[str, str]]:
    args = ["--dbname", dbname]
    if server.host:
        args += ["--host", server.host]
    if server.port:
        args += ["--port", str(server.port)]
    if server.user:
        args += ["--username", server.user]
    env = {**os.environ}
    if server.password:
        env["PGPASSWORD"] = server.password
    return args, env


def pg_dump_binary() -> str:
    found = shutil.which("pg_dump") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None)
    assert found, "pg_dump is installed with the PostgreSQL server; the at-rest scan needs it"
    return str(found)


def pg_dump(server, dbname: str) -> bytes:
    """A plain-text ``pg_dump`` of ``dbname``: what a database backup holds."""
    args, env = _pg_conninfo(server, dbname)
    result = subprocess.run([pg_dump_binary(), "--no-owner", *args], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def company_database_bytes(company) -> dict[str, bytes]:
    """Every byte of the company's database: on SQLite the file with its write-ahead
    log and shared-memory index (a committed row may still be only in the -wal file),
    on PostgreSQL a ``pg_dump`` of its database."""
    region = regions.get(company.region)
    if region.uses_postgresql:
        name = postgres_name(company.pk)
        return {f"pg_dump {name}": pg_dump(region.server, name)}
    path = sqlite_path(company.pk, region)
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            found[str(candidate)] = candidate.read_bytes()
    assert str(path) in found, f"company database {path} is missing"
    return found


def control_database_bytes() -> dict[str, bytes]:
    """Every byte of the control database as this test sees it.

    Tests run inside a transaction that is never committed, so another process (a
    ``pg_dump``, a copy of the file) would not see this test's rows. Both dumps are
    therefore taken through the test's own connection: on SQLite the database image
    itself (``serialize``: the bytes a backup of the file holds), on PostgreSQL every
    table's ``COPY ... TO STDOUT``, which is exactly what ``pg_dump`` writes for data."""
    control_connection.ensure_connection()
    raw = control_connection.connection
    if control_connection.vendor == "sqlite":
        return {"control database image": bytes(raw.serialize())}
    dump = bytearray()
    with control_connection.cursor() as cursor:
        for table in control_connection.introspection.table_names(cursor):
            with cursor.cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                for block in copy:
                    dump += block
    return {"control database COPY dump": bytes(dump)}


def files_bytes(company) -> dict[str, bytes]:
    """Every file under the company's files directory, and the names themselves
    (a file name can hold personal data too)."""
    from vouch.regions import files_dir

    root = files_dir(company.pk, company.region)
    found = {}
    names = []
    for path in sorted(root.rglob("*")):
        names.append(path.relative_to(root).as_posix())
        if path.is_file():
            found[str(path)] = path.read_bytes()
    found[f"file names under {root}"] = "\n".join(names).encode()
    return found


def sqlite_database_files(since: float) -> dict[str, bytes]:
    """Every SQLite database file under the data directory and the region directories,
    with write-ahead logs, written at or after ``since`` (a ``time.time()``): on the
    embedded default this is what a stolen disk holds of what a test stored. A file
    last written before the test began cannot hold the test's values (each made
    unique for it); the whole suite's company databases pile up in one data directory,
    and reading and scanning all of them took the longest test minutes."""
    roots = {Path(settings.DATA_DIR), *(regions.get(name).root for name in settings.VOUCH_REGIONS)}
    found = {}
    for root in roots:
        for path in root.rglob("*.sqlite3*"):
            if path.is_file() and path.stat().st_mtime >= since:
                found[str(path)] = path.read_bytes()
    return found


def everything_stored(companies, since: float) -> dict[str, bytes]:
    """The control database, each company's database and files, and on SQLite every
    database file on disk written since ``since``: all of it, as one scan's haystack."""
    blobs = dict(control_database_bytes())
    for company in companies:
        blobs.update(company_database_bytes(company))
        blobs.update(files_bytes(company))
    if connection_is_sqlite(companies[0]):
        blobs.update(sqlite_database_files(since))
    return blobs


def connection_is_sqlite(company) -> bool:
    return not regions.get(company.region).uses_postgresql


def forms_of(text: str) -> dict[str, bytes]:
    """How ``text`` could appear in stored bytes: UTF-8, UTF-16 (both byte orders), and
    hex of UTF-8 (how pg_dump writes a bytea column, where an unencrypted value in an
    encrypted column would land). Lowercased, as the haystack will be."""
    return {
        "utf-8": text.encode().lower(),
        "utf-16-le": text.encode("utf-16-le").lower(),
        "utf-16-be": text.encode("utf-16-be").lower(),
        "hex": text.encode().hex().encode(),
    }


def scan(blobs: dict[str, bytes], texts: list[str]) -> list[tuple[str, str, str]]:
    """Every (text, form, where) found, case-insensitively (ASCII case, in every form)."""
    found = []
    for where, blob in blobs.items():
        haystack = blob.lower()
        for text in texts:
            for form, needle in forms_of(text).items():
                if needle in haystack:
                    found.append((text, form, where))
    return found


def scan_start() -> float:
    """A moment just before a test stores anything: ``since`` for the scans above (with
    a margin for file systems that keep coarse modification times)."""
    return time.time() - 2


def unique(label: str) -> str:
    """A distinctive token, so a hit can only be this test's data."""
    return f"{label}{uuid.uuid4().hex[:8]}"
