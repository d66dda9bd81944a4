"""Company database connections: opened lazily, closed when their context ends.

Django keeps one connection per alias per thread. A company's alias is added to
Django's connection settings on first use; the connection itself is only opened
by the first query, and :func:`release` closes it and forgets this thread's
wrapper. Each new connection first checks the company id recorded in the
database (the row identity layer): a database that is not the current
company's is refused."""

from __future__ import annotations

import uuid

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created
from django.db.utils import ConnectionDoesNotExist, load_backend

from vouch.tenancy import regions
from vouch.tenancy.context import CompanyContext, WrongCompanyDatabase, is_company_alias

IDENTITY_TABLE = "vouch_company_identity"


def sqlite_path(company_id: uuid.UUID, region: regions.Region):
    return region.companies_dir / f"{uuid.UUID(str(company_id))}.sqlite3"


def postgres_name(company_id: uuid.UUID) -> str:
    from django.conf import settings

    return f"{settings.VOUCH_COMPANY_DATABASE_PREFIX}_{uuid.UUID(str(company_id)).hex}"


def database_settings(company_id: uuid.UUID, region_name: str) -> dict:
    """Django DATABASES entry for one company's database."""
    region = regions.get(region_name)
    if region.server is None:
        from vouch.settings import _sqlite

        entry = _sqlite(sqlite_path(company_id, region))
        # Open the file read-write but never create it: connecting to a company whose
        # database is missing (purged, moved, or looked for in the wrong region) must
        # fail, not leave an empty database at that name (which would then "exist").
        entry["NAME"] = f"{sqlite_path(company_id, region).as_uri()}?mode=rw"
    else:
        server = region.server
        entry = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": postgres_name(company_id),
            "USER": server.user,
            "PASSWORD": server.password,
            "HOST": server.host,
            "PORT": server.port,
            "OPTIONS": dict(server.options),
        }
    # Closed at the end of each request or task (release), never kept idle.
    entry["CONN_MAX_AGE"] = 0
    entry["VOUCH_COMPANY_ID"] = str(uuid.UUID(str(company_id)))
    return entry


def add_alias(alias: str, entry: dict) -> None:
    """Give this thread a (not yet opened) connection to ``entry`` under ``alias``.

    The wrapper lives only in this thread's connection store, never in Django's
    global DATABASES: nothing accumulates per company, and Django's own handling
    (closing "old" connections, test database set-up) leaves these alone; they are
    closed by :func:`release` when their context ends."""
    release(alias)  # no stale connection may serve the new settings
    # configure_settings fills in Django's defaults (ATOMIC_REQUESTS, TIME_ZONE, TEST...);
    # it insists on a "default" entry, here a throwaway one.
    configured = connections.configure_settings({DEFAULT_DB_ALIAS: {}, alias: entry})[alias]
    connections[alias] = load_backend(configured["ENGINE"]).DatabaseWrapper(configured, alias)


def ensure_alias(context: CompanyContext) -> str:
    alias = context.alias
    try:
        connections[alias]
    except ConnectionDoesNotExist:
        add_alias(alias, database_settings(context.company_id, context.region))
    return alias


def release(alias: str) -> None:
    """Close this thread's connection to ``alias`` (if one was opened) and forget it."""
    if alias == DEFAULT_DB_ALIAS:
        return
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        return
    connection.close()
    del connections[alias]


def read_identity(connection) -> str | None:
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"SELECT company_id FROM {IDENTITY_TABLE}")  # noqa: S608 - constant table name
        except Exception:  # noqa: BLE001 - a database without the table has no identity
            return None
        rows = cursor.fetchall()
    return rows[0][0] if len(rows) == 1 else None


def _check_identity(sender, connection, **kwargs) -> None:
    """Row identity layer: a company connection must open onto that company's database."""
    if not is_company_alias(connection.alias):
        return
    expected = connection.settings_dict.get("VOUCH_COMPANY_ID")
    found = read_identity(connection)
    if found != expected:
        from vouch.tenancy.events import record_wrong_database

        connection.close()
        record_wrong_database(expected=expected, found=found, where="connect")
        raise WrongCompanyDatabase(f"database for company {expected} records company {found!r}")


connection_created.connect(_check_identity, dispatch_uid="vouch.tenancy.identity")
