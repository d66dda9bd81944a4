"""Consistent snapshots of a company's or the control database, with what they hold.

SQLite: the online backup API copies the live database page by page into a private
file (writers carry on meanwhile; the copy is one committed state). PostgreSQL: a
REPEATABLE READ transaction exports its snapshot, the row counts and schema are read in
it, and ``pg_dump -Fc --snapshot`` dumps exactly that state, streamed (never whole in
memory or on disk in the clear).

The facts (row counts per table, applied migrations, the security log's chain head for
the control database) come from the same state as the dump, so a restore can be
checked against them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from vouch import regions
from vouch.audit import chain
from vouch.objectstore import CHUNK_BYTES
from vouch.tenancy import connections
from vouch.vault import files

READ_BYTES = 1024 * 1024
SQLITE = "sqlite"
PG_DUMP = "pg_dump"


class SnapshotError(RuntimeError):
    """The snapshot could not be taken (the message says why)."""


@dataclass
class Facts:
    row_counts: dict[str, int] = field(default_factory=dict)
    migrations: list[str] = field(default_factory=list)
    chain_head: dict | None = None


def schema_version(migrations: list[str]) -> str:
    """A short name for a set of applied migrations ("app.name" each): equal schema,
    equal version. The manifest keeps the full list beside it."""
    digest = hashlib.sha256("\n".join(sorted(migrations)).encode()).hexdigest()[:16]
    return f"{len(migrations)}-{digest}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def facts_of(cursor, vendor: str, *, control: bool = False) -> Facts:
    """Row counts, applied migrations and (control) chain head, read with ``cursor``
    (sqlite3 or psycopg; no parameters, so either paramstyle works)."""
    if vendor == SQLITE:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    tables = [row[0] for row in cursor.fetchall()]
    facts = Facts()
    for table in tables:
        cursor.execute(f"SELECT count(*) FROM {_quote(table)}")  # noqa: S608  (names from the catalogue)
        facts.row_counts[table] = int(cursor.fetchone()[0])
    if "django_migrations" in tables:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        facts.migrations = [f"{app}.{name}" for app, name in cursor.fetchall()]
    if control and "audit_chainhead" in tables:
        facts.chain_head = chain_head_of(cursor)
    return facts


def chain_head_of(cursor) -> dict:
    """The security log's chain head in this database state: seq, hash, and whether it
    is authentic (its MAC verifies, and it is the last event's), as `vouch audit head`."""
    cursor.execute("SELECT seq, hash, mac FROM audit_chainhead WHERE id = 1")
    head = cursor.fetchone()
    cursor.execute("SELECT seq, hash FROM audit_securityevent ORDER BY seq DESC LIMIT 1")
    last = cursor.fetchone()
    if head is None:
        return {"seq": 0, "hash": chain.GENESIS, "authentic": last is None}
    seq, hash_, mac = head
    authentic = chain.head_is_authentic(SimpleNamespace(seq=seq, hash=hash_, mac=mac)) and (
        last is not None and (int(last[0]), last[1]) == (int(seq), hash_)
    )
    return {"seq": int(seq), "hash": hash_, "authentic": authentic}


# --- SQLite -------------------------------------------------------------------


def sqlite_copy(source: sqlite3.Connection, target: Path) -> None:
    """The backup API from an open connection into a new private file."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    copy = sqlite3.connect(target)
    try:
        # All pages in one step, under one read transaction: in WAL mode writers carry on,
        # and the copy is that one state (stepwise copies restart on every write).
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


def sqlite_file_copy(path: Path, target: Path) -> None:
    if not path.exists():
        raise SnapshotError(f"database file {path} does not exist")
    source = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        sqlite_copy(source, target)
    finally:
        source.close()


def sqlite_facts(path: Path, *, control: bool = False) -> Facts:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return facts_of(connection.cursor(), SQLITE, control=control)
    finally:
        connection.close()


def read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while block := handle.read(READ_BYTES):
            yield block


@contextmanager
def sqlite_snapshot(copy_into, spool: Path, *, control: bool = False):
    """``copy_into(target_path)`` makes the copy; yields (kind, facts, chunks). The clear
    copy lives in the set's private spool directory only until it is encrypted."""
    plain = spool / "database.plain"
    try:
        copy_into(plain)
        facts = sqlite_facts(plain, control=control)
        yield SQLITE, facts, read_file(plain)
    finally:
        plain.unlink(missing_ok=True)
        Path(f"{plain}-journal").unlink(missing_ok=True)


# --- PostgreSQL ---------------------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int | str | None
    user: str
    password: str
    dbname: str
    options: dict


def pg_server_for_region(region, dbname: str) -> PgServer:
    server = region.server
    return PgServer(server.host, server.port, server.user, server.password, dbname, dict(server.options))


def pg_server_for_control() -> PgServer:
    from django.db import connections

    entry = connections["default"].settings_dict
    return PgServer(
        entry.get("HOST") or "",
        entry.get("PORT") or None,
        entry.get("USER") or "",
        entry.get("PASSWORD") or "",
        entry["NAME"],
        {k: v for k, v in (entry.get("OPTIONS") or {}).items() if isinstance(v, str | int)},
    )


def _conninfo(server: PgServer) -> str:
    from psycopg.conninfo import make_conninfo

    # The password goes in the environment, never on a command line others can read.
    params = {"host": server.host or None, "port": server.port or None, "user": server.user or None}
    return make_conninfo(dbname=server.dbname, **{k: v for k, v in params.items() if v}, **server.options)  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter


@contextmanager
def pg_snapshot(server: PgServer, *, control: bool = False):
    """Yields (kind, facts, chunks of ``pg_dump -Fc``) of one state of ``server.dbname``."""
    import psycopg

    dump = shutil.which("pg_dump")
    if dump is None:
        raise SnapshotError("pg_dump is not installed (Debian: postgresql-client)")
    connection = psycopg.connect(_conninfo(server), password=server.password or None, autocommit=False)
    connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    connection.read_only = True
    errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed below)
    process = None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]  # type: ignore[index]  # typing debt: an Optional not narrowed here
            facts = facts_of(cursor, PG_DUMP, control=control)
        env = os.environ | ({"PGPASSWORD": server.password} if server.password else {})
        process = subprocess.Popen(  # noqa: S603
            [dump, "--format=custom", f"--snapshot={snapshot}", "--no-password", f"--dbname={_conninfo(server)}"],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )

        def chunks() -> Iterator[bytes]:
            assert process is not None and process.stdout is not None
            while block := process.stdout.read(READ_BYTES):
                yield block
            if process.wait() != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()
                raise SnapshotError(f"pg_dump of {server.dbname} failed: {message[-500:]}")

        yield PG_DUMP, facts, chunks()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        errors.close()
        with contextlib.suppress(Exception):
            connection.rollback()
        connection.close()


# --- what to snapshot -----------------------------------------------------------


def company_snapshot(company_id: uuid.UUID, region_name: str, spool: Path):
    """The context manager that snapshots this company's database."""
    region = regions.get(region_name)
    if region.uses_postgresql:
        return pg_snapshot(pg_server_for_region(region, connections.postgres_name(company_id)))
    path = connections.sqlite_path(company_id, region)
    return sqlite_snapshot(lambda target: sqlite_file_copy(path, target), spool)


def control_snapshot(spool: Path):
    from django.db import connections

    connection = connections["default"]
    if connection.vendor == "postgresql":
        return pg_snapshot(pg_server_for_control(), control=True)

    def copy(target: Path) -> None:
        # Through Django's own connection: the same database the application uses
        # (a file, or the tests' in-memory one), whatever its settings say.
        if connection.in_atomic_block:
            # Its own open transaction would hold the copy back for ever (and is not committed).
            raise SnapshotError("the control database cannot be backed up from inside a transaction")
        connection.ensure_connection()
        sqlite_copy(connection.connection, target)

    return sqlite_snapshot(copy, spool, control=True)


def company_files(company_id: uuid.UUID, region_name: str) -> Iterator[tuple[str, Callable[[], Iterator[bytes]]]]:
    """(name, opener) of each of the company's stored files, wherever vault.files keeps
    them (its directory, or its prefix in the region's bucket): already encrypted with the
    company's data key, backed up as stored. ``opener()`` streams the ciphertext and
    raises FileNotFoundError for a file deleted since it was listed."""
    where = files.backend(company_id, region_name)

    def opener(name: str) -> Callable[[], Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            with where.ciphertext(name) as source:
                while block := source.read(CHUNK_BYTES):
                    yield block

        return chunks

    for name in sorted(where.walk()):
        yield name, opener(name)
