"""Creating and removing company databases and file areas.

Provisioning clones a migrated template (SQLite: the backup API into a temporary
file renamed into place; PostgreSQL: CREATE DATABASE ... TEMPLATE) and records the
company's id in the new database. It is all-or-nothing: on any failure whatever
was made is removed before the error propagates.

On PostgreSQL each company database also gets a role of its own (:func:`ensure_role`):
the only role besides the configured account that may connect to it, with rights on its
rows but not its schema. The configured account (CREATEDB, CREATEROLE) creates, migrates
and drops; the application's connections for a company log in as that company's role,
so a connection opened for one company cannot open another's database."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from django.db import connections as django_connections
from django.utils import timezone

from vouch import regions
from vouch.config import DatabaseURL, sqlite_database
from vouch.core.context import alias_for
from vouch.tenancy import connections, schema
from vouch.tenancy.router import TEMPLATE_PREFIX
from vouch.vault.errors import KeyUnavailable

IDENTITY_DDL = (
    f"CREATE TABLE IF NOT EXISTS {connections.IDENTITY_TABLE} "
    "(company_id VARCHAR(36) PRIMARY KEY, provisioned_at VARCHAR(40) NOT NULL)"
)
_current_templates: set[tuple[str, str]] = set()


class ProvisioningError(RuntimeError):
    pass


def provision(company_id: uuid.UUID, region_name: str) -> None:
    """Make company ``company_id``'s database and file area in its region."""
    region = regions.get(region_name)
    if exists(company_id, region_name):
        raise ProvisioningError(f"a database for company {company_id} already exists")
    try:
        if region.uses_postgresql:
            _provision_postgresql(company_id, region)
        else:
            _provision_sqlite(company_id, region)
        if not region.files_in_bucket:  # a bucket needs nothing made: objects carry their prefix
            regions.files_dir(company_id, region_name).mkdir(parents=True, mode=0o700)
    except BaseException:
        discard(company_id, region_name, bucket=False)  # nothing was written there yet
        raise


def discard(company_id: uuid.UUID, region_name: str, *, bucket: bool = True) -> None:
    """Remove company ``company_id``'s database and files, whatever state they are in
    (``bucket``: its objects in the region's bucket too, when files go there)."""
    region = regions.get(region_name)
    connections.release(alias_for(company_id))
    if region.uses_postgresql:
        from psycopg import sql

        with _admin(region) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{connections.postgres_name(company_id)}" WITH (FORCE)')
            # After the database: its grants to the role went with it, so nothing holds the role.
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(connections.role_name(company_id))))
    else:
        path = connections.sqlite_path(company_id, region)
        for suffix in ("", "-wal", "-shm", ".tmp", ".tmp-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(regions.files_dir(company_id, region_name), ignore_errors=True)
    if bucket and region.files_in_bucket:
        # Every object under the company's prefix. A bucket that cannot be reached raises
        # StoreUnavailable: the purge stops there and the next one finishes it.
        # imported here: vault's files and keys load models, and migration workers import
        # this module before django.setup()
        from vouch.vault.files import purge

        purge(company_id, region_name)


def exists(company_id: uuid.UUID, region_name: str) -> bool:
    region = regions.get(region_name)
    if region.uses_postgresql:
        with _admin(region) as admin:
            name = connections.postgres_name(company_id)
            return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
    return connections.sqlite_path(company_id, region).exists()


def _identity_row(company_id: uuid.UUID) -> tuple[str, str]:
    return str(uuid.UUID(str(company_id))), timezone.now().isoformat()


# --- SQLite -------------------------------------------------------------------


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_template(region: regions.Region) -> Path:
    path = region.root / "template.sqlite3"
    key = (region.name, str(schema.targets()))
    if key in _current_templates and path.exists():
        return path
    with _file_lock(region.root / ".template.lock"):
        alias = TEMPLATE_PREFIX + region.name
        connections.add_alias(alias, sqlite_database(path))
        try:
            with django_connections[alias].cursor() as cursor:
                cursor.execute(IDENTITY_DDL)
            if schema.pending(alias):
                schema.migrate(alias)
        finally:
            django_connections[alias].close()
        os.chmod(path, 0o600)
    _current_templates.add(key)
    return path


def _provision_sqlite(company_id: uuid.UUID, region: regions.Region) -> None:
    final = connections.sqlite_path(company_id, region)
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    template = _sqlite_template(region)
    temporary = Path(f"{final}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    source = sqlite3.connect(template)
    target = sqlite3.connect(temporary)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")
        target.execute(f"INSERT INTO {connections.IDENTITY_TABLE} VALUES (?, ?)", _identity_row(company_id))  # noqa: S608
        target.commit()
    finally:
        target.close()
        source.close()
    # The rename is the commit point: the final name only ever holds a complete database.
    os.replace(temporary, final)


# --- PostgreSQL ---------------------------------------------------------------


@contextmanager
def _admin(region: regions.Region, dbname: str | None = None):
    import psycopg

    server = cast(DatabaseURL, region.server)  # a PostgreSQL region (server set)
    connection = psycopg.connect(
        host=server.host or None,
        port=server.port or None,
        user=server.user or None,
        password=server.password or None,
        dbname=dbname or server.name,
        autocommit=True,
        **server.options,  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
    )
    try:
        yield connection
    finally:
        connection.close()


def _template_name() -> str:
    from django.conf import settings

    return f"{settings.VOUCH_COMPANY_DATABASE_PREFIX}_template"


def _prepare_postgresql_template(region: regions.Region, admin) -> str:
    name = _template_name()
    key = (region.name, str(schema.targets()))
    if key in _current_templates:
        return name
    if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
        admin.execute(f'CREATE DATABASE "{name}"')
    # Every company database is cloned from it: no other role may connect, let alone
    # leave an object in it (PostgreSQL before 15 lets any role create in public).
    admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
    alias = TEMPLATE_PREFIX + region.name
    entry = connections.database_settings(uuid.UUID(int=0), region.name, admin=True) | {"NAME": name}
    entry.pop("VOUCH_COMPANY_ID")
    connections.add_alias(alias, entry)
    try:
        with django_connections[alias].cursor() as cursor:
            cursor.execute(IDENTITY_DDL)
            cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        if schema.pending(alias):
            schema.migrate(alias)
    finally:
        django_connections[alias].close()
    _current_templates.add(key)
    return name


def _provision_postgresql(company_id: uuid.UUID, region: regions.Region) -> None:
    name = connections.postgres_name(company_id)
    with _admin(region) as admin:
        # One provisioning at a time per server: CREATE DATABASE ... TEMPLATE needs the
        # template to have no other session, including another provisioning's.
        admin.execute("SELECT pg_advisory_lock(hashtext('vouch-company-template'))")
        try:
            template = _prepare_postgresql_template(region, admin)
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext('vouch-company-template'))")
    with _admin(region, dbname=name) as company:
        company.execute(
            f"INSERT INTO {connections.IDENTITY_TABLE} VALUES (%s, %s)",  # noqa: S608
            _identity_row(company_id),
        )
    ensure_role(company_id, region.name)


# Tables the company's role reads but never writes: what the database says it is, and
# which migrations it has (only the configured account migrates).
READ_ONLY_TABLES = (connections.IDENTITY_TABLE, "django_migrations")


def ensure_role(company_id: uuid.UUID, region_name: str) -> bool:
    """Give company ``company_id``'s PostgreSQL database its own role, and make that role
    the only one (besides the configured account) that may connect to it. Idempotent:
    provisioning calls it, ``vouch tenants migrate`` calls it for every company (so
    companies made before roles existed get theirs).

    The role may log in and use the rows of its database's tables; it owns nothing and
    cannot change the schema. Its password is set when the company's keys exist (see
    :func:`set_role_password`). Returns whether the password was set. On SQLite, nothing
    to do: a file has no logins."""
    region = regions.get(region_name)
    if not region.uses_postgresql:
        return False
    import psycopg
    from psycopg import sql

    role = sql.Identifier(connections.role_name(company_id))
    database = sql.Identifier(connections.postgres_name(company_id))
    with _admin(region) as admin:
        # NOINHERIT and no CREATEDB/CREATEROLE (the defaults): a login for one database.
        # It may exist already: made earlier, or by a concurrent run.
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT").format(role))
        # The configured account is a member, so DROP DATABASE ... WITH (FORCE) may end the
        # role's sessions without the account being a superuser or in pg_signal_backend.
        admin.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
        password_set = _set_password(admin, company_id)
    with _admin(region, dbname=connections.postgres_name(company_id)) as company:
        grant_tables(company, company_id)
        # Tables a later migration creates (as the configured account) are the role's to use too.
        company.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
            ).format(role)
        )
        company.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}").format(
                role
            )
        )
    return password_set


def regrant(company_id: uuid.UUID, region_name: str) -> None:
    """After a migration: the company's role may use the rows of every table it made
    (default privileges cover tables the same account creates; this covers the rest)."""
    region = regions.get(region_name)
    if region.uses_postgresql:
        with _admin(region, dbname=connections.postgres_name(company_id)) as company:
            grant_tables(company, company_id)


def grant_tables(company, company_id: uuid.UUID) -> None:
    """On ``company`` (the configured account's connection to that company's database):
    the company's role may use the rows of every table, and change none of READ_ONLY_TABLES."""
    from psycopg import sql

    role = sql.Identifier(connections.role_name(company_id))
    # PostgreSQL before 15 lets every role create tables in the public schema.
    company.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    company.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
    company.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(role))
    company.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(role))
    company.execute(
        sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(table) for table in READ_ONLY_TABLES), role
        )
    )


def set_role_password(company_id: uuid.UUID, region_name: str) -> bool:
    """Set the company role's password (derived from the company's keys) once they exist."""
    region = regions.get(region_name)
    if not region.uses_postgresql:
        return False
    with _admin(region) as admin:
        return _set_password(admin, company_id)


def _set_password(admin, company_id: uuid.UUID) -> bool:
    from psycopg import sql

    # imported here: vault's keys load models, and migration workers import this module
    # before django.setup()
    from vouch.vault.keyring import role_password

    role = connections.role_name(company_id)
    try:
        password = role_password(company_id, role)
    except KeyUnavailable:
        return False  # keys come after the database (services.create_company); set then
    # Hashed here by libpq (SCRAM-SHA-256): the server, its logs and its statistics only
    # ever see the verifier, never the password.
    verifier = admin.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))
    return True


def roles_in_place(region: regions.Region, company_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Of these companies, those whose database exists, its role exists and may connect,
    and PUBLIC may not."""
    names = {connections.postgres_name(cid): cid for cid in company_ids}
    roles = {connections.role_name(cid): cid for cid in company_ids}
    with _admin(region) as admin:
        rows = admin.execute(
            "SELECT d.datname, r.rolname FROM pg_database d, pg_roles r "
            "WHERE d.datname = ANY(%s) AND r.rolname = ANY(%s) "
            "AND d.datacl IS NOT NULL AND has_database_privilege(r.oid, d.oid, 'CONNECT') "
            "AND NOT EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0)",
            [list(names), list(roles)],
        ).fetchall()
    return {names[datname] for datname, rolname in rows if roles[rolname] == names[datname]}
