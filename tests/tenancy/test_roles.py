"""Each company database has its own PostgreSQL role (P6, one more layer): a connection
opened with one company's credentials cannot open another company's database.

On the service path's PostgreSQL (trust authentication on 127.0.0.1) the database's
CONNECT privilege is what refuses; the test against a private cluster with SCRAM
authentication proves the password matters too."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import psycopg
import pytest
from django.db import connections as django_connections
from psycopg import sql

from tests.accounts.helpers import fast_company
from tests.tenancy.test_operations import _run
from vouch import regions
from vouch.activity import services as activity
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.tenancy import connections, provisioning
from vouch.vault import keyring

SERVICES = os.environ.get("VOUCH_TEST_SERVICES") == "1"
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not SERVICES, reason="PostgreSQL only: a SQLite file has no logins"),
]


def connect_as(company, database_of, *, password: str | None = None, region: str = "eu", dbname: str = ""):
    """A plain connection to ``database_of``'s database (or ``dbname``) with ``company``'s
    role and password."""
    server = regions.get(region).server
    role = connections.role_name(company.pk)
    return psycopg.connect(
        host=server.host or None,
        port=server.port or None,
        user=role,
        password=keyring.role_password(company.pk, role) if password is None else password,
        dbname=dbname or connections.postgres_name(database_of.pk),
        autocommit=True,
        connect_timeout=10,
        **server.options,
    )


def admin_query(query, params=(), *, region: str = "eu", dbname: str | None = None) -> list[tuple]:
    with provisioning._admin(regions.get(region), dbname=dbname) as admin:
        return admin.execute(query, params).fetchall()


def role_exists(company) -> bool:
    return bool(admin_query("SELECT 1 FROM pg_roles WHERE rolname = %s", [connections.role_name(company.pk)]))


def public_may_connect(company) -> bool:
    [(allowed,)] = admin_query(
        "SELECT has_database_privilege('public', %s, 'CONNECT')", [connections.postgres_name(company.pk)]
    )
    return allowed


@pytest.fixture
def pair(db):
    a, b = fast_company("Alpha"), fast_company("Bravo")
    for company in (a, b):
        with company_context(company):
            activity.log(activity.Kind.ROLE_CHANGED, f"{company.name}'s entry")
    connections.release_kept()
    return a, b


def test_company_as_credentials_are_refused_on_company_bs_database(pair):
    a, b = pair
    with connect_as(a, a) as own:
        assert own.execute("SELECT current_user").fetchone()[0] == connections.role_name(a.pk)
        assert own.execute(f"SELECT company_id FROM {connections.IDENTITY_TABLE}").fetchone()[0] == str(a.pk)  # noqa: S608
    for intruder, target in ((a, b), (b, a)):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect_as(intruder, target)


def test_no_other_role_may_connect_to_a_company_database(pair):
    a, _ = pair
    assert not public_may_connect(a)
    # A role of nobody in particular (as any other login on the server would be).
    stranger = f"{settings_prefix()}_stranger_{uuid.uuid4().hex[:8]}"
    with provisioning._admin(regions.get("eu")) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
    try:
        server = regions.get("eu").server
        # Nor to the template every company database is cloned from.
        for database in (connections.postgres_name(a.pk), provisioning._template_name()):
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                psycopg.connect(host=server.host, port=server.port or None, user=stranger, dbname=database)
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect_as(a, SimpleNamespace(pk=None), dbname=provisioning._template_name())
    finally:
        with provisioning._admin(regions.get("eu")) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))


def settings_prefix() -> str:
    from django.conf import settings

    return settings.VOUCH_COMPANY_DATABASE_PREFIX


def test_the_application_connects_as_the_companys_role(pair):
    a, b = pair
    for company in (a, b):
        with company_context(company) as context:
            assert Entry.objects.count() == 1
            with django_connections[context.alias].cursor() as cursor:
                cursor.execute("SELECT current_user, session_user")
                assert cursor.fetchone() == (connections.role_name(company.pk),) * 2


def test_the_companys_role_uses_rows_but_cannot_change_the_schema_or_its_identity(pair):
    a, b = pair
    with connect_as(a, a) as own:
        own.execute("UPDATE activity_entry SET id = id")  # its own rows: yes
        for statement in (
            "CREATE TABLE stolen (x text)",
            "ALTER TABLE activity_entry ADD COLUMN x text",
            "DROP TABLE activity_entry",
            f"UPDATE {connections.IDENTITY_TABLE} SET company_id = '{b.pk}'",  # noqa: S608
            f"DELETE FROM {connections.IDENTITY_TABLE}",  # noqa: S608
            "DELETE FROM django_migrations",
            f'CREATE DATABASE "{connections.postgres_name(uuid.uuid4())}"',
            f'CREATE ROLE "{settings_prefix()}_made_by_a"',
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                own.execute(statement)
    assert admin_query(
        f"SELECT company_id FROM {connections.IDENTITY_TABLE}",  # noqa: S608
        dbname=connections.postgres_name(a.pk),
    ) == [(str(a.pk),)]


def test_the_password_survives_key_rotations(pair):
    """Derived from the company's blind-index key, which a master-key rotation re-wraps
    and a data-key rotation leaves alone: the role's password never needs changing."""
    from vouch.vault.models import DataKey
    from vouch.vault.rotation.master import rotate_master

    a, b = pair
    role = connections.role_name(a.pk)
    before = keyring.role_password(a.pk, role)
    master_before = set(DataKey.objects.filter(company_id=a.pk).values_list("master_version", flat=True))
    assert rotate_master()["rewrapped"] >= 2
    assert set(DataKey.objects.filter(company_id=a.pk).values_list("master_version", flat=True)) != master_before
    keyring.add_data_key_version(a.pk)
    keyring.forget()
    assert keyring.role_password(a.pk, role) == before
    # Each company's differs, and so would another role name's.
    assert before != keyring.role_password(b.pk, connections.role_name(b.pk))
    assert before != keyring.role_password(a.pk, role + "x")
    with connect_as(a, a) as own:
        assert own.execute("SELECT current_user").fetchone()[0] == role


def test_deleting_a_company_drops_its_role(pair):
    a, b = pair
    assert role_exists(a)
    provisioning.discard(a.pk, a.region)
    assert not role_exists(a)
    assert role_exists(b)


@pytest.fixture
def own_prefix(settings):
    """Company databases under a name prefix of this test's own. ``tenants check`` and
    ``migrate`` look at every database with the installation's prefix, and by the end of a
    run the suite's other companies are thousands of them: ``check`` probed each one and
    the test took 158-174 s in CI."""
    from tests.live import drop_pg_databases_with_prefix

    prefix = f"{settings.VOUCH_COMPANY_DATABASE_PREFIX}_r{uuid.uuid4().hex[:6]}"
    settings.VOUCH_COMPANY_DATABASE_PREFIX = prefix
    provisioning._current_templates.clear()  # it remembers checked templates by region only
    yield
    connections.release_kept()
    provisioning._current_templates.clear()
    drop_pg_databases_with_prefix(prefix + "_")


def test_tenants_migrate_gives_existing_companies_their_roles(own_prefix, pair):
    """A company made before roles existed: its database open to PUBLIC, no role of its own."""
    a, b = pair
    database = sql.Identifier(connections.postgres_name(a.pk))
    role = sql.Identifier(connections.role_name(a.pk))
    with provisioning._admin(regions.get("eu"), dbname=connections.postgres_name(a.pk)) as company:
        company.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role))
        company.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(role))
        company.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(role))
        company.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {}").format(role))
        company.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {}").format(role)
        )
    with provisioning._admin(regions.get("eu")) as admin:
        admin.execute(sql.SQL("GRANT ALL ON DATABASE {} TO PUBLIC").format(database))
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(database, role))
        admin.execute(sql.SQL("DROP ROLE {}").format(role))
    assert not role_exists(a) and public_may_connect(a)
    with pytest.raises(psycopg.OperationalError):
        connect_as(a, a)
    # Monitoring sees it.
    code, out, _ = _run("check")
    assert code == 1
    assert [line for line in out.splitlines() if "lacks its own role" in line] == [
        line for line in out.splitlines() if str(a.pk) in line and "lacks its own role" in line
    ]
    assert f"{a.pk}" in out and "lacks its own role or admits others" in out

    for _ in range(2):  # and again: nothing left to do, nothing fails
        code, out, err = _run("migrate", "--no-progress")
        assert code == 0, out + err
        assert "0 failed" in out
        assert role_exists(a) and not public_may_connect(a)
        assert not public_may_connect(b)
        with connect_as(a, a) as own:
            assert own.execute("SELECT count(*) FROM activity_entry").fetchone()[0] == 1
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect_as(a, b)
        connections.release_kept()
        assert _summaries(a) == ["Alpha's entry"]
        assert "lacks its own role" not in _run("check")[1]


def _summaries(company) -> list[str]:
    with company_context(company):
        return [entry.summary for entry in Entry.objects.all()]


# --- The password matters: a private PostgreSQL with SCRAM authentication -----------------


@pytest.fixture(scope="module")
def scram_server():
    """A PostgreSQL cluster of this test's own (initdb), every login by SCRAM password,
    and in it the account docs/operations/production.md asks for: CREATEDB and CREATEROLE, not a superuser.
    Yields that account's URL."""
    import secrets
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from tests.live import free_port

    initdb = shutil.which("initdb")
    pg_ctl = shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("initdb/pg_ctl not installed")
    root = Path(tempfile.mkdtemp(prefix="vouch-scram-"))
    data = root / "data"
    superuser_password, password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    (root / "pw").write_text(superuser_password + "\n")
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-U", "boot", "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"]
        + ["--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
    subprocess.run(
        [*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user="boot", password=superuser_password, dbname="postgres", autocommit=True
        ) as boot:
            boot.execute(sql.SQL("CREATE ROLE vouch LOGIN CREATEDB CREATEROLE PASSWORD {}").format(password))
        yield f"postgres://vouch:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def on_scram_server(scram_server, settings):
    """Region eu's company databases on the private cluster, for this test."""
    settings.VOUCH_REGION_CONFIG = {
        **settings.VOUCH_REGION_CONFIG,
        "eu": {**settings.VOUCH_REGION_CONFIG["eu"], "database_url": scram_server},
    }
    provisioning._current_templates.clear()
    connections.release_kept()
    yield
    connections.release_kept()
    provisioning._current_templates.clear()


def test_on_a_password_checking_server_each_company_logs_in_with_its_own_password(on_scram_server):
    a, b = fast_company("Alpha"), fast_company("Bravo")
    for company in (a, b):
        with company_context(company) as context:
            activity.log(activity.Kind.ROLE_CHANGED, f"{company.name}'s entry")
            with django_connections[context.alias].cursor() as cursor:
                cursor.execute("SELECT current_user")
                assert cursor.fetchone()[0] == connections.role_name(company.pk)
    connections.release_kept()
    assert _summaries(a) == ["Alpha's entry"]

    with connect_as(a, a) as own:
        assert own.execute("SELECT count(*) FROM activity_entry").fetchone()[0] == 1
    # A's name and password, on B's database: logged in, then refused the database.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(a, b)
    # B's role with A's password, or any wrong one: not even logged in.
    a_password = keyring.role_password(a.pk, connections.role_name(a.pk))
    for intruder, target, password in ((b, b, a_password), (a, a, "guess"), (a, a, "")):
        with pytest.raises(psycopg.OperationalError, match="password"):
            connect_as(intruder, target, password=password)

    # The account with CREATEDB and CREATEROLE (no more) deletes a company: database and
    # role, even while the company's role is still connected from elsewhere.
    held = connect_as(a, a)
    try:
        provisioning.discard(a.pk, a.region)
    finally:
        held.close()
    assert not role_exists(a) and role_exists(b)
