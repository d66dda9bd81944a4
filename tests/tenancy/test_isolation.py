"""Company isolation, attacked layer by layer (P2, P5, P6). Runs on both paths: SQLite
files on the embedded default, a PostgreSQL database per company on the service path.

* no company context, no query (fail closed), whatever the ORM call;
* another company's object in a company's context is refused and recorded;
* contexts nest and unwind to the right database;
* a database that is not the company's (swapped, renamed, relabelled) is refused on
  connect and recorded;
* provisioning is all-or-nothing, in the company's region only;
* company tables only in company databases, control tables only in the control one;
* connections do not pile up (300 companies), a request closes its company's one;
* threads in different companies at once each see only their own.

Company databases are not rolled back between tests, so each test makes its own."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection as control_connection
from django.db import connections as django_connections
from django.db import transaction
from django.db.backends.signals import connection_created
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_user
from vouch import regions
from vouch.accounts.models import Membership
from vouch.accounts.policy import Role
from vouch.activity import services as activity
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.context import (
    NoCompanyContext,
    WrongCompanyDatabase,
    alias_for,
    company_context,
    current,
    current_or_none,
)
from vouch.tenancy import connections, provisioning
from vouch.tenancy.models import Company
from vouch.tenancy.services import create_company
from vouch.vault import keyring

pytestmark = pytest.mark.django_db


def on_postgresql(region: str = "eu") -> bool:
    return regions.get(region).uses_postgresql


def summaries(company) -> list[str]:
    with company_context(company):
        return sorted(entry.summary for entry in Entry.objects.all())


def wrong_database_events(company_id, *, target: str | None = None) -> list[SecurityEvent]:
    events = SecurityEvent.objects.filter(
        action=EventAction.TENANCY_WRONG_DATABASE, outcome=Outcome.BLOCKED, company_id=company_id
    )
    if target is not None:
        events = events.filter(target=target)
    return list(events)


def has_thread_alias(company_id) -> bool:
    return hasattr(django_connections._connections, alias_for(company_id))


@pytest.fixture
def pair(db):
    """Companies A and B, each with one entry of its own in its activity log."""
    a, b = fast_company("Alpha"), fast_company("Bravo")
    for company in (a, b):
        with company_context(company):
            activity.log(activity.Kind.ROLE_CHANGED, f"{company.name}'s entry")
    # Tests start with no connection kept from setting up: the identity check and the
    # refusals below are about opening one.
    connections.release_kept()
    return a, b


# --- Fail closed: no context, no query -----------------------------------------------


def _raw(model):
    return list(model.objects.raw(f"SELECT * FROM {model._meta.db_table}"))  # noqa: S608


NO_CONTEXT_CALLS = {
    "all": lambda: list(Entry.objects.all()),
    "filter": lambda: list(Entry.objects.filter(action="x")),
    "get": lambda: Entry.objects.get(pk=uuid.uuid4()),
    "first": lambda: Entry.objects.first(),
    "exists": lambda: Entry.objects.exists(),
    "count": lambda: Entry.objects.count(),
    "values_list": lambda: list(Entry.objects.values_list("summary", flat=True)),
    "iterator": lambda: list(Entry.objects.iterator()),
    "in_bulk": lambda: Entry.objects.in_bulk([uuid.uuid4()]),
    "create": lambda: Entry.objects.create(action="x", summary="no context"),
    "save": lambda: Entry(action="x", summary="no context").save(),
    "get_or_create": lambda: Entry.objects.get_or_create(action="x", defaults={"summary": "no context"}),
    "raw": lambda: _raw(Entry),
    "bulk_create": lambda: Entry.objects.bulk_create([Entry(action="x", summary="no context")]),
    "update": lambda: Entry.objects.update(action="no context"),
    "delete": lambda: Entry.objects.all().delete(),
    "service_log": lambda: activity.log("x", "no context"),
}


def test_company_model_without_context_raises(pair):
    """Every way of reaching a company model, outside any context (one pair of
    companies for all of them: company databases are slow to make on PostgreSQL)."""
    a, b = pair
    assert current_or_none() is None
    connections.release_kept()  # the fixture's own contexts leave their connections kept
    for name, call in NO_CONTEXT_CALLS.items():
        with pytest.raises(NoCompanyContext):
            call()
            pytest.fail(f"{name} ran without a company context")
        # Nothing was opened or written anywhere.
        assert not has_thread_alias(a.pk) and not has_thread_alias(b.pk), name
    assert summaries(a) == ["Alpha's entry"]
    assert summaries(b) == ["Bravo's entry"]


def test_objects_loaded_in_a_context_are_unusable_after_it(pair):
    a, _ = pair
    with company_context(a):
        entry = Entry.objects.get()
    for call in (entry.save, entry.delete, entry.refresh_from_db):
        with pytest.raises(NoCompanyContext):
            call()
    assert summaries(a) == ["Alpha's entry"]


def test_current_raises_outside_a_context_and_names_the_company_inside():
    with pytest.raises(NoCompanyContext):
        current()
    company = SimpleNamespace(pk=uuid.uuid4(), region="eu")
    with company_context(company) as context:
        assert current() == context
        assert context.company_id == company.pk
    assert current_or_none() is None


# --- Wrong context: another company's object -----------------------------------------


WRONG_CONTEXT_CALLS = {
    "save": lambda entry: entry.save(),
    "save_update_fields": lambda entry: entry.save(update_fields=["summary"]),
    "delete": lambda entry: entry.delete(),
    "refresh_from_db": lambda entry: entry.refresh_from_db(),
}


@pytest.mark.parametrize("call", WRONG_CONTEXT_CALLS.values(), ids=WRONG_CONTEXT_CALLS.keys())
def test_object_from_b_used_in_as_context_is_refused_and_recorded(pair, call):
    a, b = pair
    with company_context(b):
        theirs = Entry.objects.get()
    theirs.summary = "Bravo's entry, changed from Alpha"
    with company_context(a):
        with pytest.raises(WrongCompanyDatabase):
            call(theirs)
        assert Entry.objects.count() == 1  # A's own entry only; nothing of B's arrived
    assert summaries(a) == ["Alpha's entry"]
    assert summaries(b) == ["Bravo's entry"]
    events = wrong_database_events(a.pk, target="activity.Entry")
    assert len(events) == 1
    assert events[0].details["found"] == alias_for(b.pk)


def test_naming_bs_database_explicitly_from_as_context_is_refused(pair):
    """``using=`` skips the router; B's connection does not exist in A's context."""
    a, b = pair
    with company_context(a):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - ConnectionDoesNotExist
            list(Entry.objects.using(alias_for(b.pk)).all())
        assert "doesn't exist" in str(caught.value)
    assert summaries(b) == ["Bravo's entry"]


def test_a_query_built_in_one_context_runs_in_the_context_it_is_evaluated_in(pair):
    a, b = pair
    with company_context(a):
        lazy = Entry.objects.all()
    with company_context(b):
        assert [e.summary for e in lazy] == ["Bravo's entry"]


# --- Nested contexts -----------------------------------------------------------------


def test_nested_context_uses_bs_database_then_as_again(pair):
    a, b = pair
    with company_context(a) as outer:
        assert [e.summary for e in Entry.objects.all()] == ["Alpha's entry"]
        with company_context(b) as inner:
            assert current() == inner
            assert [e.summary for e in Entry.objects.all()] == ["Bravo's entry"]
            activity.log("x", "written inside B")
        assert current() == outer
        # B's connection may be kept for B's next context, but A's queries go to A.
        assert sorted(e.summary for e in Entry.objects.all()) == ["Alpha's entry"]
    assert summaries(b) == ["Bravo's entry", "written inside B"]


def test_a_transaction_in_the_company_database_can_start_at_once(pair):
    a, _ = pair
    with company_context(a) as context, transaction.atomic(using=context.alias):
        activity.log("x", "in a transaction")
    assert summaries(a) == ["Alpha's entry", "in a transaction"]


def test_reentering_a_company_inside_another_keeps_the_outer_transaction(pair):
    """A, then B, then A again: leaving the inner A must not close the outer A's
    connection, which holds an open transaction."""
    a, b = pair
    with company_context(a) as context, transaction.atomic(using=context.alias):
        activity.log("x", "uncommitted in A")
        with company_context(b), company_context(a):
            assert Entry.objects.count() == 2  # the same connection: sees the uncommitted row
        assert Entry.objects.count() == 2
    assert summaries(a) == ["Alpha's entry", "uncommitted in A"]


def test_an_error_in_a_nested_context_unwinds_to_the_outer_one(pair):
    a, b = pair
    with company_context(a):
        with pytest.raises(ZeroDivisionError), company_context(b):
            1 / 0  # noqa: B018
        assert [e.summary for e in Entry.objects.all()] == ["Alpha's entry"]
    assert current_or_none() is None


# --- The identity layer ----------------------------------------------------------------


def _swap_sqlite_files(a, b) -> None:
    region = regions.get(a.region)
    path_a, path_b = connections.sqlite_path(a.pk, region), connections.sqlite_path(b.pk, region)
    spare = Path(f"{path_a}.swap")
    os.replace(path_a, spare)
    os.replace(path_b, path_a)
    os.replace(spare, path_b)


def _rename_postgresql_databases(a, b) -> None:
    region = regions.get(a.region)
    name_a, name_b = connections.postgres_name(a.pk), connections.postgres_name(b.pk)
    with provisioning._admin(region) as admin:
        admin.execute(f'ALTER DATABASE "{name_a}" RENAME TO "{name_a}_x"')
        admin.execute(f'ALTER DATABASE "{name_b}" RENAME TO "{name_a}"')
        admin.execute(f'ALTER DATABASE "{name_a}_x" RENAME TO "{name_b}"')


def swap_databases(a, b) -> None:
    """What a mistaken restore or a hostile operator could do: each company's name now
    leads to the other's database."""
    if on_postgresql(a.region):
        _rename_postgresql_databases(a, b)
    else:
        _swap_sqlite_files(a, b)


def set_identity(company, recorded_id: str) -> None:
    """Rewrite the company id a database records, behind the application's back."""
    region = regions.get(company.region)
    sql = f"UPDATE {connections.IDENTITY_TABLE} SET company_id = %s"  # noqa: S608
    if region.uses_postgresql:
        with provisioning._admin(region, dbname=connections.postgres_name(company.pk)) as admin:
            admin.execute(sql, [recorded_id])
    else:
        import sqlite3

        db = sqlite3.connect(connections.sqlite_path(company.pk, region))
        try:
            db.execute(sql.replace("%s", "?"), [recorded_id])
            db.commit()
        finally:
            db.close()


def test_swapped_databases_are_refused_on_connect_and_recorded(pair):
    a, b = pair
    swap_databases(a, b)
    try:
        for company in (a, b):
            with company_context(company), pytest.raises(WrongCompanyDatabase):
                Entry.objects.count()
            events = wrong_database_events(company.pk, target="connect")
            assert len(events) == 1, company
        # Not even a read got through: each name still holds the other's rows.
    finally:
        swap_databases(a, b)
    # Control: put back, each company reaches its own database again.
    assert summaries(a) == ["Alpha's entry"]
    assert summaries(b) == ["Bravo's entry"]


@pytest.mark.parametrize("recorded", ["other_company", "garbage", "empty"])
def test_a_database_recording_another_identity_is_refused(pair, recorded):
    a, b = pair
    value = {"other_company": str(a.pk), "garbage": "x' OR '1'='1", "empty": ""}[recorded]
    set_identity(b, value)
    with company_context(b), pytest.raises(WrongCompanyDatabase):
        Entry.objects.count()
    with company_context(b), pytest.raises(WrongCompanyDatabase):
        activity.log("x", "must not be written")
    assert len(wrong_database_events(b.pk, target="connect")) == 2
    set_identity(b, str(b.pk))
    assert summaries(b) == ["Bravo's entry"]


def test_a_database_without_an_identity_row_is_refused(pair):
    _, b = pair
    region = regions.get(b.region)
    sql = f"DELETE FROM {connections.IDENTITY_TABLE}"  # noqa: S608
    if region.uses_postgresql:
        with provisioning._admin(region, dbname=connections.postgres_name(b.pk)) as admin:
            admin.execute(sql)
    else:
        import sqlite3

        db = sqlite3.connect(connections.sqlite_path(b.pk, region))
        db.execute(sql)
        db.commit()
        db.close()
    with company_context(b), pytest.raises(WrongCompanyDatabase):
        Entry.objects.count()
    assert wrong_database_events(b.pk, target="connect")


def test_a_missing_database_is_refused_and_not_created(pair):
    """A company whose database is gone (purged, or a wrong region) must not get a
    fresh empty one made at its name by merely connecting."""
    a, _ = pair
    region = regions.get(a.region)
    if region.uses_postgresql:
        provisioning.discard(a.pk, a.region)
    else:
        path = connections.sqlite_path(a.pk, region)
        os.replace(path, f"{path}.gone")
    with company_context(a), pytest.raises((WrongCompanyDatabase, Exception)):
        Entry.objects.count()
    assert not provisioning.exists(a.pk, a.region)


# --- Provisioning: all or nothing --------------------------------------------------------


def company_databases() -> set[str]:
    """Every company database or file that exists, looked at directly."""
    found: set[str] = set()
    for region in regions.all_regions():
        if region.uses_postgresql:
            with provisioning._admin(region) as admin:
                rows = admin.execute(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                    [f"{provisioning._template_name().rsplit('_', 1)[0]}_"],
                ).fetchall()
            found |= {f"{region.name}:{name}" for (name,) in rows}
        if region.companies_dir.exists():
            found |= {str(p) for p in region.companies_dir.iterdir()}
        if region.files_dir.exists():
            found |= {str(p) for p in region.files_dir.iterdir()}
    return found


def world_state() -> tuple:
    return company_databases(), Company.objects.count(), Membership.objects.count()


def _fail(*args, **kwargs):
    raise RuntimeError("injected failure")


FAILURES = {
    "identity_write": lambda mp: mp.setattr(provisioning, "_identity_row", _fail),
    "template": lambda mp: mp.setattr(
        provisioning, "_prepare_postgresql_template" if on_postgresql() else "_sqlite_template", _fail
    ),
    "files_dir": lambda mp: mp.setattr(regions, "files_dir", lambda *a: Path("/proc/version/not-a-directory")),
    "membership_row": lambda mp: mp.setattr(Membership.objects, "create", _fail),
}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_failed_provisioning_leaves_nothing(monkeypatch, failure):
    owner = fast_user()
    fast_company()  # the template exists, so only this company's own things are counted
    before = world_state()
    failure(monkeypatch)
    with pytest.raises((RuntimeError, OSError)):
        create_company("Half Made Ltd", "eu", owner)
    monkeypatch.undo()
    assert world_state() == before
    assert not Company.objects.filter(name="Half Made Ltd").exists()
    assert not Membership.objects.filter(user=owner).exists()


def test_failed_create_database_leaves_nothing(monkeypatch):
    """PostgreSQL: CREATE DATABASE itself fails (its template does not exist)."""
    if not on_postgresql():
        pytest.skip("PostgreSQL only: the SQLite path has no CREATE DATABASE")
    owner = fast_user()
    fast_company()
    before = world_state()
    monkeypatch.setattr(provisioning, "_prepare_postgresql_template", lambda region, admin: "vouch_no_such_template")
    with pytest.raises(Exception, match="vouch_no_such_template"):
        create_company("Never Made Ltd", "eu", owner)
    monkeypatch.undo()
    assert world_state() == before
    assert not Membership.objects.filter(user=owner).exists()


def test_provisioning_control_succeeds_and_is_counted():
    """Control for the failure tests: a real provisioning does change world_state."""
    fast_company()
    before = world_state()
    company = fast_company()
    after = world_state()
    assert after[1:] == (before[1] + 1, before[2] + 1)
    assert any(str(company.pk) in name or company.pk.hex in name for name in after[0] - before[0])


# --- Regions ---------------------------------------------------------------------------


@pytest.fixture
def two_regions(settings, tmp_path):
    """Two regions with their own directories (and, on PostgreSQL, their own server
    address: one local server reached as 127.0.0.1 and as localhost)."""
    url = settings.VOUCH_REGION_CONFIG["eu"]["database_url"]
    other_url = url.replace("127.0.0.1", "localhost") if url else None
    settings.VOUCH_REGIONS = ["eu", "us"]
    settings.VOUCH_REGION_CONFIG = {
        "eu": {"database_url": url, "dir": str(tmp_path / "eu-cell")},
        "us": {"database_url": other_url, "dir": str(tmp_path / "us-cell")},
    }
    return tmp_path


def _files_naming(root: Path, company_id) -> list[Path]:
    return [p for p in root.rglob("*") if str(company_id) in p.name or company_id.hex in p.name]


@pytest.mark.parametrize("region", ["eu", "us"])
def test_database_and_files_only_in_the_companys_region(two_regions, settings, region):
    company = create_company("Regional Ltd", region, fast_user())
    other = "us" if region == "eu" else "eu"
    home = regions.get(region)
    assert (home.files_dir / str(company.pk)).is_dir()
    assert not _files_naming(two_regions / f"{other}-cell", company.pk)
    # Outside the region, only the installation's key store names it: its key-encryption
    # key (wrapped by the master key; no company data), kept like the control database's
    # key rows, installation-wide (docs/backups.md).
    kek = Path(settings.VOUCH_KEYS_DIR) / "companies" / f"{company.pk}.kek"
    assert _files_naming(Path(os.environ["VOUCH_DATA_DIR"]), company.pk) == [kek]
    if home.uses_postgresql:
        # The database is on the region's server, under the company's name.
        expected = regions.get(region).server
        with company_context(company) as context:
            assert Entry.objects.count() == 0
            wrapper = django_connections[context.alias]
            assert (wrapper.settings_dict["HOST"], wrapper.settings_dict["PORT"]) == (expected.host, expected.port)
            assert wrapper.settings_dict["HOST"] == ("127.0.0.1" if region == "eu" else "localhost")
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT current_database()")
                assert cursor.fetchone()[0] == connections.postgres_name(company.pk)
        assert not (home.companies_dir / f"{company.pk}.sqlite3").exists()
    else:
        path = home.companies_dir / f"{company.pk}.sqlite3"
        assert path.is_file()
        found = set(_files_naming(two_regions / f"{region}-cell", company.pk))
        assert found == {path, home.files_dir / str(company.pk)}
        with company_context(company) as context:
            assert Entry.objects.count() == 0
            assert django_connections[context.alias].settings_dict["NAME"] == f"{path.as_uri()}?mode=rw"


def test_unknown_region_is_refused_before_anything_is_made(two_regions):
    before = world_state()
    with pytest.raises(ValueError, match="unknown region"):
        create_company("Nowhere Ltd", "mars", fast_user())
    assert world_state() == before


# --- Tables: company tables only in company databases ---------------------------------------


def test_control_database_has_no_company_tables():
    tables = control_connection.introspection.table_names()
    assert "tenancy_company" in tables  # control: the walk sees the control database
    assert not [t for t in tables if t.startswith("activity_")]
    assert connections.IDENTITY_TABLE not in tables


def test_company_database_has_no_control_tables(pair):
    a, _ = pair
    with company_context(a) as context:
        Entry.objects.count()
        tables = set(django_connections[context.alias].introspection.table_names())
    assert {"activity_entry", connections.IDENTITY_TABLE} <= tables
    control = {"accounts_user", "accounts_membership", "tenancy_company", "audit_securityevent", "django_session"}
    assert not tables & control
    assert not [t for t in tables if t.split("_")[0] in {"accounts", "auth", "tenancy", "audit", "account", "mfa"}]


# --- Connections -------------------------------------------------------------------------


def open_company_sqlite_files() -> set[str]:
    """Company databases this process has open, from its file descriptors."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        for suffix in ("-wal", "-shm", ""):
            if target.endswith(f".sqlite3{suffix}") and "/companies/" in target:
                found.add(target.removesuffix(suffix))
                break
    return found


def open_postgresql_sessions(names: list[str]) -> int:
    with provisioning._admin(regions.get("eu")) as admin:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", [names]
        ).fetchone()[0]


def open_company_connections(companies) -> int:
    if on_postgresql():
        return open_postgresql_sessions([connections.postgres_name(c.pk) for c in companies])
    # Only these companies' files: a connection another test of this process left open
    # (in a thread of its own) to another company is not this test's business.
    names = {f"{c.pk}.sqlite3" for c in companies}
    return len([path for path in open_company_sqlite_files() if os.path.basename(path) in names])


# Each thread keeps the connections of its most recent companies (at most
# VOUCH_COMPANY_CONNECTIONS_KEPT), plus the one in use; none beyond that.
HANDFUL = 3


@pytest.mark.parametrize("kept", [0, 4], ids=["closed-after-each", "four-kept"])
def test_300_companies_in_a_loop_leave_at_most_a_handful_of_connections(settings, kept):
    settings.VOUCH_COMPANY_CONNECTIONS_KEPT = kept
    connections.release_kept()
    companies = []
    for i in range(300):
        company = SimpleNamespace(pk=uuid.uuid4(), region="eu")
        provisioning.provision(company.pk, company.region)
        # The log is encrypted, so each company needs its keys (and the control row
        # they belong to); no owner or membership, which this test does not need.
        Company.objects.create(id=company.pk, name=f"Loop {i}", region=company.region)
        keyring.create_company_keys(company.pk)
        companies.append(company)
    baseline = open_company_connections(companies)
    assert baseline <= HANDFUL
    limit = HANDFUL + kept
    peak = 0
    for i, company in enumerate(companies):
        with company_context(company):
            activity.log("x", f"entry {i}")
            assert Entry.objects.count() == 1
            if i % 50 == 0:
                during = open_company_connections(companies)
                assert during >= 1  # control: an open connection is seen while in use
                peak = max(peak, during)
    assert peak <= limit
    assert open_company_connections(companies) <= limit
    # Only the most recent companies' connections are kept, and closing them leaves none.
    assert len([c for c in companies if has_thread_alias(c.pk)]) == kept
    assert all(has_thread_alias(c.pk) for c in companies[len(companies) - kept :])
    connections.release_kept()
    assert not [c for c in companies if has_thread_alias(c.pk)]
    assert open_company_connections(companies) <= HANDFUL
    if not on_postgresql():  # the service path's session teardown drops them by prefix
        for company in companies:
            provisioning.discard(company.pk, company.region)


@pytest.fixture
def opened_aliases():
    """Aliases of the company connections opened while the test runs."""
    seen: list[str] = []

    def remember(sender, connection, **kwargs):
        seen.append(connection.alias)

    connection_created.connect(remember, weak=False)
    yield seen
    connection_created.disconnect(remember)


@pytest.mark.parametrize("page", ["list", "missing_entry"])
def test_a_request_closes_its_companys_connection(client, pair, opened_aliases, page, settings):
    settings.VOUCH_COMPANY_CONNECTIONS_KEPT = 0
    a, _ = pair
    owner = a.memberships.select_related("user").get(role=Role.OWNER)
    client.force_login(owner.user)
    url = reverse("activity") if page == "list" else reverse("activity_entry", args=[uuid.uuid4()])
    response = client.get(url)
    assert response.status_code == (200 if page == "list" else 404)
    assert alias_for(a.pk) in opened_aliases  # control: the request did use A's database
    assert not has_thread_alias(a.pk)
    assert open_company_connections([a]) == 0


def test_a_request_keeps_its_companys_connection_for_the_next(client, pair, opened_aliases):
    a, _ = pair
    owner = a.memberships.select_related("user").get(role=Role.OWNER)
    client.force_login(owner.user)
    for _ in range(3):
        assert client.get(reverse("activity")).status_code == 200
    assert opened_aliases.count(alias_for(a.pk)) == 1  # opened once, reused twice
    assert has_thread_alias(a.pk) and open_company_connections([a]) == 1
    connections.release_kept()
    assert not has_thread_alias(a.pk) and open_company_connections([a]) == 0


# --- Threads -----------------------------------------------------------------------------


def test_two_threads_in_two_companies_at_once_see_only_their_own(pair):
    a, b = pair
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, dict] = {"Alpha": {}, "Bravo": {}}

    def work(company):
        out = results[company.name]
        try:
            with company_context(company):
                barrier.wait()  # both threads are inside their contexts now
                activity.log("x", f"{company.name} thread write")
                barrier.wait()  # both have written before either reads
                out["seen"] = sorted(e.summary for e in Entry.objects.all())
                out["current"] = current().company_id
                barrier.wait()
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            out["error"] = exc

    threads = [threading.Thread(target=work, args=(c,)) for c in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for company in (a, b):
        out = results[company.name]
        assert "error" not in out, out
        assert out["current"] == company.pk
        assert out["seen"] == [f"{company.name} thread write", f"{company.name}'s entry"]


def test_a_thread_started_inside_a_context_has_none(pair):
    a, _ = pair
    outcome = {}

    def work():
        try:
            Entry.objects.count()
        except NoCompanyContext:
            outcome["refused"] = True

    with company_context(a):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(30)
    assert outcome == {"refused": True}


def test_isolation_events_are_in_the_audit_vocabulary(caplog):
    from vouch.audit import record

    with caplog.at_level("WARNING", logger="vouch.audit"):
        record("no_such_action_as_a_control", outcome=Outcome.BLOCKED)
        record(EventAction.TENANCY_WRONG_DATABASE, outcome=Outcome.BLOCKED, target="connect")
        record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED, target="route:activity_entry")
    warnings = [r.getMessage() for r in caplog.records if "not in the vocabulary" in r.getMessage()]
    assert warnings == ["audit: action no_such_action_as_a_control is not in the vocabulary"]


def test_a_kept_connection_serves_the_next_context_of_its_company_only(pair, opened_aliases, monkeypatch):
    """The next request of the same company reuses the connection (no new one, so no
    second identity check is needed); another company never gets it; an idle one is
    replaced after IDLE_SECONDS."""
    a, b = pair
    connections.release_kept()
    with company_context(a):
        assert summaries_here() == ["Alpha's entry"]
    with company_context(a):
        assert summaries_here() == ["Alpha's entry"]
    with company_context(b):
        assert summaries_here() == ["Bravo's entry"]
    assert opened_aliases == [alias_for(a.pk), alias_for(b.pk)]  # a's was reused
    # An idle connection is not reused.
    monkeypatch.setattr(connections, "IDLE_SECONDS", -1.0)
    with company_context(a):
        assert summaries_here() == ["Alpha's entry"]
    assert opened_aliases == [alias_for(a.pk), alias_for(b.pk), alias_for(a.pk)]
    connections.release_kept()


def summaries_here() -> list[str]:
    return [entry.summary for entry in Entry.objects.all()]
