"""Read-only looks at company databases, without going through Django.

Django's connection to a company database checks the identity row and records a
security event when it is wrong; that is right for serving requests, but an
operator's report has to look at broken databases too (missing, not a database,
another company's). So this module opens each database directly, read-only in
effect (it only runs SELECTs), and says what it found. It is fast enough for
thousands of companies: one short connection per database, run from a thread
pool, and on PostgreSQL every size in one query per server."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import cast

from django.conf import settings

from vouch import regions
from vouch.config import DatabaseURL
from vouch.tenancy import connections, schema
from vouch.tenancy.provisioning import _admin

CONNECT_TIMEOUT = 5  # seconds; a probe must not hang on one unreachable database


@dataclass
class Probe:
    """What one company database looked like."""

    company_id: str
    region: str
    location: str = ""  # SQLite path or PostgreSQL host:port/name; never a password
    exists: bool = False
    opens: bool = False
    identity: str | None = None  # the company id the database records
    provisioned_at: str = ""
    applied: set[tuple[str, str]] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)
    size: int | None = None
    error: str = ""

    @property
    def identity_ok(self) -> bool:
        return self.opens and self.identity == self.company_id

    @property
    def healthy(self) -> bool:
        return self.identity_ok and not self.pending and not self.error

    @property
    def schema_state(self) -> str:
        if not self.opens:
            return "unknown"
        return "current" if not self.pending else f"behind {len(self.pending)}"

    @property
    def problem(self) -> str:
        """One short sentence on what is wrong, or "" when nothing is."""
        if not self.exists:
            return "database missing"
        if not self.opens:
            return f"database does not open: {self.error}"
        if self.identity is None:
            return "no identity row (not a provisioned company database)"
        if self.identity != self.company_id:
            return f"identity row names company {self.identity}, not {self.company_id}"
        if self.error:
            return self.error
        return ""


def short_error(exc: BaseException) -> str:
    """First line of an error, short enough for a table cell."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# --- Expected migrations ------------------------------------------------------


@cache
def _plan() -> tuple[tuple[tuple[str, str], tuple[tuple[str, str], ...]], ...]:
    """Every migration a current company database has applied, in order, with what
    each replaces (squashed migrations count as applied when all they replace are).

    The same plan Django's executor makes for ``migrate <company app>`` on an
    empty database, dependencies in other apps included (Django records those too,
    though the router skips their operations)."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    seen: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for target in schema.targets():
        for node in graph.forwards_plan(target):
            if node not in seen:
                seen[node] = tuple(graph.nodes[node].replaces or ())
    return tuple(seen.items())


def pending_from_applied(applied: set[tuple[str, str]]) -> list[str]:
    """The migrations ``schema.pending`` would report for a database with ``applied``."""
    missing = []
    for node, replaces in _plan():
        if node in applied or (replaces and all(r in applied for r in replaces)):
            continue
        missing.append(f"{node[0]}.{node[1]}")
    return missing


# --- SQLite -------------------------------------------------------------------


def sqlite_size(path) -> int | None:
    total = None
    for suffix in ("", "-wal"):
        try:
            size = (path.parent / f"{path.name}{suffix}").stat().st_size
        except FileNotFoundError:
            continue
        total = (total or 0) + size
    return total


def _probe_sqlite(result: Probe, region: regions.Region) -> None:
    path = connections.sqlite_path(uuid.UUID(result.company_id), region)
    result.location = str(path)
    result.exists = path.exists()
    result.size = sqlite_size(path)
    if not result.exists:
        return
    try:
        # mode=rw: never create a missing file; only SELECTs are run.
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=CONNECT_TIMEOUT)
    except sqlite3.Error as exc:
        result.error = short_error(exc)
        return
    try:
        _read(result, db.cursor(), sqlite3.Error)
    finally:
        db.close()


# --- PostgreSQL -----------------------------------------------------------------


def server_key(region: regions.Region) -> tuple[str, str]:
    server = cast(DatabaseURL, region.server)  # a PostgreSQL region (server set)
    return (server.host or "localhost", server.port or "5432")


def postgres_location(region: regions.Region, name: str) -> str:
    host, port = server_key(region)
    return f"{host}:{port}/{name}"


def postgres_sizes(region: regions.Region, name: str | None = None) -> dict[str, int]:
    """Size of every database on ``region``'s server with this installation's prefix
    (or only of database ``name``), in one query."""

    prefix = settings.VOUCH_COMPANY_DATABASE_PREFIX + "_"
    pattern = prefix.replace("\\", "\\\\").replace("_", r"\_").replace("%", r"\%") + "%"
    query = "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname LIKE %s AND datallowconn"
    params = [pattern]
    if name is not None:
        query += " AND datname = %s"
        params.append(name)
    with _admin(region) as admin:
        return dict(admin.execute(query, params).fetchall())


def _probe_postgresql(result: Probe, region: regions.Region, sizes: dict[str, int] | None) -> None:
    import psycopg

    name = connections.postgres_name(uuid.UUID(result.company_id))
    result.location = postgres_location(region, name)
    if sizes is None:
        sizes = postgres_sizes(region, name)
    result.exists = name in sizes
    result.size = sizes.get(name)
    if not result.exists:
        return
    server = cast(DatabaseURL, region.server)  # a PostgreSQL region (server set)
    try:
        db = psycopg.connect(
            host=server.host or None,
            port=server.port or None,
            user=server.user or None,
            password=server.password or None,
            dbname=name,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            **server.options,  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
        )
    except psycopg.Error as exc:
        result.error = short_error(exc)
        return
    try:
        _read(result, db.cursor(), psycopg.Error)
    finally:
        db.close()


# --- Both ---------------------------------------------------------------------


def _read(result: Probe, cursor, error_class) -> None:
    """Identity and applied migrations through an open DB-API cursor."""
    try:
        cursor.execute(f"SELECT company_id, provisioned_at FROM {connections.IDENTITY_TABLE}")  # noqa: S608
        rows = cursor.fetchall()
    except error_class as exc:
        message = short_error(exc)
        if "no such table" in message or "does not exist" in message:
            result.opens = True  # a database, just not a company's
        else:
            result.error = message
        return
    result.opens = True
    if len(rows) == 1:
        result.identity, result.provisioned_at = str(rows[0][0]), str(rows[0][1])
    try:
        cursor.execute("SELECT app, name FROM django_migrations")
        result.applied = {(app, name) for app, name in cursor.fetchall()}
    except error_class:
        result.applied = set()  # no migrations table: nothing applied yet
    result.pending = pending_from_applied(result.applied)


def probe(company_id, region_name: str, *, pg_sizes: dict[str, int] | None = None) -> Probe:
    """Look at one company's database. Never raises for a broken database: the
    problem is in the result."""
    result = Probe(company_id=str(uuid.UUID(str(company_id))), region=region_name)
    try:
        region = regions.get(region_name)
        if region.uses_postgresql:
            _probe_postgresql(result, region, pg_sizes)
        else:
            _probe_sqlite(result, region)
    except Exception as exc:  # noqa: BLE001 - one broken database must not stop a report
        result.error = result.error or short_error(exc)
    return result


def probe_many(companies: Iterable[tuple[str, str]], *, threads: int = 8) -> dict[str, Probe]:
    """Probe ``(company_id, region)`` pairs concurrently; keyed by company id.

    Plain DB-API connections (not Django's) are safe in threads, and each probe
    mostly waits on I/O, so threads are enough here."""
    pairs = [(str(uuid.UUID(str(cid))), region) for cid, region in companies]
    sizes: dict[str, dict[str, int]] = {}
    for region_name in {region for _, region in pairs}:
        try:
            region = regions.get(region_name)
            if region.uses_postgresql:
                sizes[region_name] = postgres_sizes(region)
        except Exception:  # noqa: BLE001, S110 - each probe then reports the problem itself
            pass
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = pool.map(lambda pair: probe(pair[0], pair[1], pg_sizes=sizes.get(pair[1])), pairs)
        return {result.company_id: result for result in results}
