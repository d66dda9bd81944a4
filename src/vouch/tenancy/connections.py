"""Company database connections: opened lazily, kept for a few recent companies.

Django keeps one connection per alias per thread. A company's alias is added to
this thread's connection store on first use; the connection itself is only opened
by the first query. When a company context ends, :func:`keep` leaves the open
connection to the next context of the same company in this thread, for the
``VOUCH_COMPANY_CONNECTIONS_KEPT`` most recently used companies (the oldest beyond
that are closed), and for at most ``IDLE_SECONDS``. Opening a connection costs more
than most requests: a PostgreSQL login, or on SQLite the WAL checkpoint and
file removal that the *last* close of a database does and the next write undoes.
So thousands of companies still never mean thousands of open connections, and a
busy company does not pay for a new one on every request.

Each new connection first checks the company id recorded in the database (the row
identity layer): a database that is not the current company's is refused."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created
from django.db.utils import ConnectionDoesNotExist, load_backend  # type: ignore[attr-defined]  # present in Django 5.2, missing from its stubs

from vouch import regions
from vouch.config import sqlite_database
from vouch.core.context import CompanyContext, WrongCompanyDatabase, is_company_alias
from vouch.tenancy.events import record_wrong_database

IDENTITY_TABLE = "vouch_company_identity"
# A kept connection unused for longer is closed instead of reused.
IDLE_SECONDS = 60.0

# Per thread: alias -> when its context last ended, most recent last.
_kept = threading.local()


def _kept_aliases() -> OrderedDict:
    kept = getattr(_kept, "aliases", None)
    if kept is None:
        kept = _kept.aliases = OrderedDict()
    return kept


def sqlite_path(company_id: uuid.UUID, region: regions.Region):
    return region.companies_dir / f"{uuid.UUID(str(company_id))}.sqlite3"


def postgres_name(company_id: uuid.UUID) -> str:
    from django.conf import settings

    return f"{settings.VOUCH_COMPANY_DATABASE_PREFIX}_{uuid.UUID(str(company_id)).hex}"


def role_name(company_id: uuid.UUID) -> str:
    """The PostgreSQL role of one company (named as its database: roles and databases
    have separate names, and the prefix keeps installations sharing a server apart)."""
    return postgres_name(company_id)


def database_settings(company_id: uuid.UUID, region_name: str, *, admin: bool = False) -> dict:
    """Django DATABASES entry for one company's database.

    On PostgreSQL it logs in as the company's own role, which may connect to this one
    database only (vouch.tenancy.provisioning.ensure_role); ``admin`` logs in with the
    configured account instead, for migrations, which change the schema."""
    region = regions.get(region_name)
    if region.server is None:
        entry = sqlite_database(sqlite_path(company_id, region))
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
        if not admin:
            # The company's role; its password is derived from the company's keys as the
            # connection opens (vouch.tenancy.postgresql).
            entry |= {"ENGINE": "vouch.tenancy.postgresql", "USER": role_name(company_id), "PASSWORD": ""}
            entry["VOUCH_COMPANY_ROLE"] = True
    # Django's own age-based closing does not apply to these: keep() and reuse() decide.
    entry["CONN_MAX_AGE"] = 0
    # A kept connection may have died since (a database server restart ends every
    # connection): Django checks it before its first query once reuse() asks it to.
    entry["CONN_HEALTH_CHECKS"] = True
    entry["VOUCH_ADMIN"] = admin
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


def ensure_alias(context: CompanyContext, *, admin: bool = False) -> str:
    """This thread's alias for the context's company database. ``admin``: from now to the
    end of the context, as the configured account (to change the schema: migrations);
    such a connection is closed when the context ends, never kept for the next one."""
    alias = context.alias
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        connection = None
    if connection is None or (admin and not connection.settings_dict.get("VOUCH_ADMIN")):
        add_alias(alias, database_settings(context.company_id, context.region, admin=admin))
    return alias


def reuse(alias: str) -> None:
    """A context of ``alias`` starts in this thread: take its kept connection back if it
    is recent and healthy, otherwise start on a fresh one."""
    ended = _kept_aliases().pop(alias, None)
    if ended is None:
        release(alias)
        return
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        return
    stale = time.monotonic() - ended > IDLE_SECONDS
    if stale or connection.in_atomic_block or (connection.errors_occurred and not connection.is_usable()):
        release(alias)
        return
    # Django's CONN_HEALTH_CHECKS, as it does per request for the control database: the
    # first query of this context checks the kept connection (SELECT 1 on PostgreSQL)
    # and reconnects if the server closed it, instead of failing the request. Lazily, so
    # a context that makes no query costs no round trip.
    connection.health_check_done = False  # type: ignore[attr-defined]  # present in Django 5.2, missing from its stubs


def keep(alias: str) -> None:
    """A context of ``alias`` ended in this thread: keep its connection for the next one
    (closing the least recently used beyond the limit), or close it."""
    from django.conf import settings

    limit = getattr(settings, "VOUCH_COMPANY_CONNECTIONS_KEPT", 8)
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        return
    if (
        limit <= 0
        or connection.connection is None
        or connection.in_atomic_block
        or connection.settings_dict.get("VOUCH_ADMIN")
    ):
        release(alias)
        return
    kept = _kept_aliases()
    kept[alias] = time.monotonic()
    kept.move_to_end(alias)
    while len(kept) > limit:
        oldest, _ = kept.popitem(last=False)
        release(oldest)


def release_kept() -> None:
    """Close every connection this thread keeps (before a database is dropped or moved,
    and at the end of a test run)."""
    kept = _kept_aliases()
    while kept:
        alias, _ = kept.popitem(last=False)
        release(alias)


def release(alias: str) -> None:
    """Close this thread's connection to ``alias`` (if one was opened) and forget it."""
    if alias == DEFAULT_DB_ALIAS:
        return
    _kept_aliases().pop(alias, None)
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
        connection.close()
        record_wrong_database(expected=expected, found=found, where="connect")
        raise WrongCompanyDatabase(f"database for company {expected} records company {found!r}")


connection_created.connect(_check_identity, dispatch_uid="vouch.tenancy.identity")
