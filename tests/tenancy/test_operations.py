"""`vouch tenants migrate|list|show|check`: every company database at once.

Company databases are not rolled back between tests, so each test here works in
regions of its own (a temporary directory; on PostgreSQL a database-name prefix of
its own) and removes them afterwards."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest
from django.core.management import call_command

from tests.conftest import make_company, make_user
from vouch.core.context import company_context
from vouch.tenancy import connections, provisioning, regions, schema
from vouch.tenancy.models import Company
from vouch.tenancy.operations import commands, migrate, probe, report
from vouch.vault import keyring

SERVICES = os.environ.get("VOUCH_TEST_SERVICES") == "1"
# What a rolled-back company lacks: every activity migration.
CURRENT_SCHEMA = ["activity.0001_initial", "activity.0002_encrypted_entries"]
BEHIND = f"behind {len(CURRENT_SCHEMA)}"


@pytest.fixture(autouse=True)
def _workers_share_data_dir(monkeypatch, settings):
    # Spawned workers import tests.settings again; without this each would make
    # itself a fresh temporary data directory.
    monkeypatch.setenv("VOUCH_TEST_DATA_DIR", str(settings.DATA_DIR))


@pytest.fixture
def own_regions(tmp_path, settings):
    """Regions eu and us for this test only (both on the test PostgreSQL server in
    service mode, under a database-name prefix of their own)."""
    from tests.live import drop_pg_databases_with_prefix

    url = settings.VOUCH_REGION_CONFIG["eu"]["database_url"]
    prefix = f"{settings.VOUCH_COMPANY_DATABASE_PREFIX}_o{uuid.uuid4().hex[:6]}"
    settings.VOUCH_REGIONS = ["eu", "us"]
    settings.VOUCH_REGION_CONFIG = {
        name: {"database_url": url, "dir": str(tmp_path / name)} for name in settings.VOUCH_REGIONS
    }
    settings.VOUCH_COMPANY_DATABASE_PREFIX = prefix
    # Provisioning remembers which templates it has checked by region name only.
    provisioning._current_templates.clear()
    yield tmp_path
    provisioning._current_templates.clear()
    if url:
        drop_pg_databases_with_prefix(prefix + "_")


def _companies(count: int, region: str = "eu") -> list[Company]:
    """``count`` companies with their databases and keys, quickly (no members, no events)."""
    from concurrent.futures import ThreadPoolExecutor

    companies = [Company(id=uuid.uuid4(), name=f"Bulk {i:04d}", region=region) for i in range(count)]
    # Provisioning serialises only the cloning itself; the rest overlaps.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda company: provisioning.provision(company.id, region), companies))
    Company.objects.bulk_create(companies)
    for company in companies:
        keyring.create_company_keys(company.id)  # their activity logs are encrypted
    return companies


def _roll_back(company: Company) -> None:
    """Take a company's database back to before its first company-app migration."""
    with company_context(company) as context:
        # As the configured account: the company's own role may not change the schema.
        alias = connections.ensure_alias(context, admin=True)
        call_command("migrate", "activity", "zero", database=alias, verbosity=0)


def _roll_back_template(region_name: str) -> None:
    """Companies provisioned from now on start behind the current schema."""
    region = regions.get(region_name)
    migrate.migrate_templates([region_name])
    with migrate.template_connection(region) as alias:
        call_command("migrate", "activity", "zero", database=alias, verbosity=0)
        assert schema.pending(alias) == CURRENT_SCHEMA


def _corrupt(company: Company) -> None:
    region = regions.get(company.region)
    if region.uses_postgresql:
        # Another company's identity: the database is not this company's any more.
        with provisioning._admin(region, dbname=connections.postgres_name(company.id)) as db:
            db.execute(f"UPDATE {connections.IDENTITY_TABLE} SET company_id = %s", [str(uuid.uuid4())])  # noqa: S608
    else:
        connections.sqlite_path(company.id, region).write_bytes(os.urandom(8192))


def _pending(company: Company) -> list[str]:
    with company_context(company) as context:
        return schema.pending(connections.ensure_alias(context))


# --- migrate ------------------------------------------------------------------------


@pytest.mark.django_db
def test_migrating_200_companies_with_one_corrupt_migrates_199_and_reports_it(own_regions):
    _roll_back_template("eu")
    started = time.monotonic()
    companies = _companies(200)
    created = time.monotonic() - started
    broken = companies[137]
    _corrupt(broken)
    assert _pending(companies[0]) == CURRENT_SCHEMA  # really behind, by Django's own count

    seen = []
    started = time.monotonic()
    result = migrate.migrate_all(workers=4, progress=seen.append)
    took = time.monotonic() - started
    print(f"\n200 companies ({'PostgreSQL' if SERVICES else 'SQLite'}): created {created:.1f}s, migrated {took:.1f}s")

    assert len(seen) == len(result.companies) == 200
    assert result.count(migrate.MIGRATED) == 199
    assert [f.company_id for f in result.failures] == [str(broken.id)]
    reason = result.failures[0].reason
    assert ("identity row names company" in reason) if SERVICES else ("not a database" in reason)
    assert not result.ok
    migrated = [c for c in companies if c is not broken]
    assert all(r.applied == CURRENT_SCHEMA for r in result.companies if r.outcome == migrate.MIGRATED)
    probes = probe.probe_many([(c.id, c.region) for c in migrated])
    assert all(p.healthy for p in probes.values())
    for company in (migrated[0], migrated[-1]):
        assert _pending(company) == []
        with company_context(company):
            from vouch.activity.services import entries, log

            log("test", "the table the migration made works")
            assert entries().count() == 1
    # The template went first: a company created now starts current.
    [fresh] = _companies(1)
    assert probe.probe(fresh.id, "eu").pending == []
    assert result.templates[0].region == "eu" and result.templates[0].outcome == migrate.MIGRATED

    # Run again: nothing to do but the broken one.
    again = migrate.migrate_all(workers=4)
    assert again.count(migrate.CURRENT) == 200 and len(again.failures) == 1


@pytest.mark.django_db
def test_interrupted_migration_resumes_where_it_stopped(own_regions):
    _roll_back_template("eu")
    companies = _companies(12)
    done = []

    def stop_after_four(result):
        done.append(result)
        if len(done) == 4:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    first = migrate.migrate_all(workers=2, progress=stop_after_four)
    assert first.interrupted and not first.ok
    finished = {r.company_id for r in first.companies if r.outcome == migrate.MIGRATED}
    assert 4 <= len(finished) < 12
    left = [c for c in companies if str(c.id) not in finished]
    # A company a worker had already started when the stop came may still be finishing
    # (its migrations apply one by one, each whole): what it lacks is always the tail of
    # the list, never a migration half-applied or one skipped. The rest are untouched.
    states = [probe.probe(c.id, "eu").pending for c in left]
    assert left and all(state == CURRENT_SCHEMA[len(CURRENT_SCHEMA) - len(state) :] for state in states)
    assert CURRENT_SCHEMA in states

    second = migrate.migrate_all(workers=2)
    assert second.ok
    outcomes = {r.company_id: r.outcome for r in second.companies}
    assert all(outcomes[cid] == migrate.CURRENT for cid in finished)
    assert all(outcomes[str(c.id)] in (migrate.MIGRATED, migrate.CURRENT) for c in left)
    assert sum(o == migrate.MIGRATED for o in outcomes.values()) >= 1
    assert all(probe.probe(c.id, "eu").pending == [] for c in companies)


def crash_on_marked_company(company_id: str, name: str, region: str):
    """A worker task that dies outright (as a crashing driver would) on one company."""
    if company_id == os.environ.get("VOUCH_TEST_CRASH_COMPANY"):
        os._exit(70)
    return migrate.migrate_one(company_id, name, region)


@pytest.mark.django_db
def test_a_worker_dying_on_one_company_fails_only_that_company(own_regions, monkeypatch):
    _roll_back_template("eu")
    companies = _companies(6)
    monkeypatch.setenv("VOUCH_TEST_CRASH_COMPANY", str(companies[1].id))
    result = migrate.migrate_all(workers=3, task=crash_on_marked_company)
    assert [f.company_id for f in result.failures] == [str(companies[1].id)]
    assert "worker process died" in result.failures[0].reason
    # Every other company is migrated. One that was in flight beside the dying worker
    # may have finished before the pool broke, its result lost with the pool: tried
    # again alone, it is then reported current.
    others = [c for c in companies if c is not companies[1]]
    outcomes = {r.company_id: r.outcome for r in result.companies}
    assert len(result.companies) == 6 and outcomes.keys() == {str(c.id) for c in companies}
    assert all(outcomes[str(c.id)] in (migrate.MIGRATED, migrate.CURRENT) for c in others)
    assert result.count(migrate.MIGRATED) >= 3  # at least the ones never in flight with it
    assert all(probe.probe(c.id, "eu").pending == [] for c in others)
    assert probe.probe(companies[1].id, "eu").pending == CURRENT_SCHEMA


@pytest.mark.django_db
def test_missing_and_foreign_databases_fail_with_a_clear_reason(own_regions):
    _roll_back_template("eu")
    gone, foreign, fine = _companies(3)
    provisioning.discard(gone.id, "eu")
    # A copy of another company's database put in this company's place.
    region = regions.get("eu")
    if region.uses_postgresql:
        with provisioning._admin(region, dbname=connections.postgres_name(foreign.id)) as db:
            db.execute(f"UPDATE {connections.IDENTITY_TABLE} SET company_id = %s", [str(fine.id)])  # noqa: S608
    else:
        path = connections.sqlite_path(foreign.id, region)
        path.write_bytes(connections.sqlite_path(fine.id, region).read_bytes())
    result = migrate.migrate_all([gone.id, foreign.id, fine.id], workers=2)
    reasons = {f.company_id: f.reason for f in result.failures}
    assert reasons == {
        str(gone.id): "database missing",
        str(foreign.id): f"identity row names company {fine.id}, not {foreign.id}",
    }
    # The foreign database was not migrated through the wrong company.
    assert probe.probe(foreign.id, "eu").pending == CURRENT_SCHEMA
    assert result.count(migrate.MIGRATED) == 1


@pytest.mark.django_db
def test_migrate_skips_deleted_companies_and_refuses_unknown_ids(own_regions):
    live, tombstone = _companies(2)
    provisioning.discard(tombstone.id, "eu")
    Company.objects.filter(pk=tombstone.pk).update(status="deleted", is_active=False)
    result = migrate.migrate_all()
    assert [r.company_id for r in result.companies] == [str(live.id)]
    assert result.ok
    with pytest.raises(LookupError, match="no such company"):
        migrate.migrate_all([uuid.uuid4()])
    with pytest.raises(LookupError, match="not a company id"):
        migrate.migrate_all(["../etc"])


# --- list / show ----------------------------------------------------------------------


def _run(*argv: str) -> tuple[int, str, str]:
    """``vouch tenants ARGV`` in this process (the test database and settings)."""
    import argparse

    parser = argparse.ArgumentParser()
    commands.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tenants", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = commands.run(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_list_reports_region_status_schema_and_size(own_regions):
    owner = make_user()
    current = make_company("Current Co", "eu", owner)
    behind = make_company("Behind Co", "us", owner)
    _roll_back(behind)
    Company.objects.filter(pk=current.pk).update(is_active=False)
    code, out, _ = _run("list", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0
    assert rows["Current Co"]["schema"] == "current" and rows["Current Co"]["status"] == "inactive"
    assert rows["Behind Co"]["schema"] == BEHIND and rows["Behind Co"]["region"] == "us"
    assert rows["Behind Co"]["pending"] == CURRENT_SCHEMA
    assert rows["Current Co"]["size_bytes"] > 0
    code, out, _ = _run("list")
    assert re.search(rf"{current.id}\s+Current Co\s+eu\s+inactive\s+current\s+\d+\.\d (KiB|MiB)", out)
    assert re.search(rf"{behind.id}\s+Behind Co\s+us\s+active\s+{BEHIND}", out)


@pytest.mark.django_db
def test_probe_agrees_with_django_about_pending_migrations(own_regions):
    company = make_company("Probe Co", "eu")
    assert probe.probe(company.id, "eu").pending == _pending(company) == []
    _roll_back(company)
    assert probe.probe(company.id, "eu").pending == _pending(company) == CURRENT_SCHEMA


@pytest.mark.django_db
def test_show_by_id_or_exact_name(own_regions):
    owner = make_user()
    company = make_company("Show Me Ltd", "eu", owner)
    from tests.conftest import add_member
    from vouch.accounts.policy import Role

    add_member(company, Role.VIEWER)
    (provisioning.files_dir(company.id, "eu") / "cv.pdf").write_bytes(b"x" * 3000)
    for key in (str(company.id), "Show Me Ltd"):
        code, out, _ = _run("show", key, "--json")
        details = json.loads(out)
        assert code == 0
        assert details["id"] == str(company.id) and details["members"] == 2
        assert details["database"]["identity_ok"] and details["database"]["exists"]
        assert details["files"]["size"] == 3000 and details["files"]["mode"] == "0o700"
        assert details["pending"] == [] and details["problems"] == []
    location = details["database"]["location"]
    assert location.endswith(connections.postgres_name(company.id) if SERVICES else f"{company.id}.sqlite3")
    code, out, _ = _run("show", "Show Me Ltd")
    assert code == 0 and "Identity       ok" in out and "Members        2" in out
    assert "Region         eu: European Union (Frankfurt)" in out
    # Not a prefix, not a case-insensitive match: exactly the name, or an id.
    assert _run("show", "Show Me")[0] == 1
    make_company("Show Me Ltd", "us", owner)
    code, _, err = _run("show", "Show Me Ltd")
    assert code == 1 and "several companies" in err and str(company.id) in err


@pytest.mark.django_db
def test_show_and_list_never_print_a_database_password(own_regions, settings):
    # A region whose server is unreachable, configured with a password.
    settings.VOUCH_REGIONS = [*settings.VOUCH_REGIONS, "zz"]
    settings.VOUCH_REGION_CONFIG = {
        **settings.VOUCH_REGION_CONFIG,
        "zz": {"database_url": "postgres://vouch:s3cr3t-pw@127.0.0.1:1/postgres", "dir": str(own_regions / "zz")},
    }
    company = Company.objects.create(name="Far Away", region="zz")
    code, out, err = _run("show", str(company.id))
    assert code == 1
    assert "127.0.0.1:1/" in out and "PROBLEM" in out
    code, listing, _ = _run("list", "--json")
    assert "s3cr3t" not in out + err + listing
    code, checked, _ = _run("check")
    assert code == 1 and "s3cr3t" not in checked


# --- check / orphans --------------------------------------------------------------------


@pytest.mark.django_db
def test_check_passes_on_healthy_companies_and_names_each_problem(own_regions):
    owner = make_user()
    healthy, behind, missing, garbage, open_files = (make_company(f"Co {i}", "eu", owner) for i in range(5))
    code, out, _ = _run("check")
    assert code == 0 and "OK: 5 companies" in out

    _roll_back(behind)
    provisioning.discard(missing.id, "eu")
    _corrupt(garbage)
    os.chmod(provisioning.files_dir(open_files.id, "eu"), 0o755)  # noqa: S103 - the misconfiguration tested
    result = report.check_all()
    problems: dict[str, list[str]] = {}
    for cid, _, _, problem in result.problems:
        problems.setdefault(cid, []).append(problem)
    assert str(healthy.id) not in problems
    assert problems[str(behind.id)] == [f"schema behind: {', '.join(CURRENT_SCHEMA)}"]
    assert problems[str(missing.id)] == ["database missing", "files directory missing"]
    [broken] = problems[str(garbage.id)]
    assert ("identity row names company" if SERVICES else "file is not a database") in broken
    assert problems[str(open_files.id)] == ["files directory is open to other users (mode 0o755)"]
    assert result.orphans == []
    code, out, _ = _run("check")
    assert code == 1 and "database missing" in out


@pytest.mark.django_db
def test_remove_orphans_removes_only_data_no_company_owns(own_regions):
    owner = make_user()
    keep = make_company("Keeper", "eu", owner)
    other = make_company("Other region", "us", owner)
    gone = make_company("Row deleted", "eu", owner)
    Company.objects.filter(pk=gone.pk).delete()  # its database and files stay behind
    stray_files = regions.get("us").files_dir / str(uuid.uuid4())
    stray_files.mkdir()
    # Attacks on the clean-up: a stray entry that points at a live company's files,
    # and a copy of a live company's database under an unowned id.
    decoy = regions.get("eu").files_dir / str(uuid.uuid4())
    decoy.symlink_to(provisioning.files_dir(keep.id, "eu"))
    (provisioning.files_dir(keep.id, "eu") / "precious.txt").write_text("keep me")
    copy_id = uuid.uuid4()
    eu = regions.get("eu")
    if eu.uses_postgresql:
        with provisioning._admin(eu) as admin:
            admin.execute(
                f'CREATE DATABASE "{connections.postgres_name(copy_id)}" '
                f'TEMPLATE "{connections.postgres_name(other.id)}"'
            )
    else:
        copied = connections.sqlite_path(other.id, regions.get("us")).read_bytes()
        connections.sqlite_path(copy_id, eu).write_bytes(copied)

    result = report.check_all()
    found = {(o.kind, o.company_id) for o in result.orphans}
    assert found == {
        ("database", str(gone.id)),
        ("files", str(gone.id)),
        ("files", stray_files.name),
        ("files", decoy.name),
        ("database", str(copy_id)),
    }
    copy = next(o for o in result.orphans if o.company_id == str(copy_id))
    assert copy.note == f"its identity row names company {other.id}"
    # Just made: possibly a company being created right now, so left alone.
    assert report.remove_orphans(result.orphans) == []
    assert provisioning.exists(gone.id, "eu")

    removed = report.remove_orphans(result.orphans, min_age=0)
    assert {(o.kind, o.company_id) for o in removed} == found
    assert not provisioning.exists(gone.id, "eu") and not provisioning.exists(copy_id, "eu")
    assert not provisioning.files_dir(gone.id, "eu").exists() and not stray_files.exists()
    assert not decoy.exists() and not decoy.is_symlink()
    # Nothing of a live company was touched.
    assert (provisioning.files_dir(keep.id, "eu") / "precious.txt").read_text() == "keep me"
    for company in (keep, other):
        assert probe.probe(company.id, company.region).healthy
    code, out, _ = _run("check")
    assert code == 0, out


@pytest.mark.django_db
def test_check_cli_lists_orphans_before_removing_them(own_regions):
    gone = make_company("Soon orphaned", "eu")
    Company.objects.filter(pk=gone.pk).delete()
    code, out, _ = _run("check")
    assert code == 1 and str(gone.id) in out and "may be a company being created" in out
    code, out, _ = _run("check", "--remove-orphans")  # too young by default
    assert code == 1 and "too young to be sure" in out
    assert provisioning.exists(gone.id, "eu")
    code, out, _ = _run("check", "--remove-orphans", "--orphan-min-age", "0")
    assert out.index("Orphans") < out.index("removed database")
    assert code == 0 and not provisioning.exists(gone.id, "eu")


@pytest.mark.django_db
def test_regions_sharing_a_server_do_not_make_orphans_of_each_other(own_regions):
    companies = [make_company(f"R{i}", region) for i, region in enumerate(["eu", "us", "us"])]
    result = report.check_all()
    assert result.ok, (result.problems, result.orphans)
    assert len(companies) == result.companies


# --- the real command, in a process of its own ------------------------------------------------


SEED = """
from django.core.management import call_command
from vouch.accounts.models import User
from vouch.tenancy import regions
from vouch.tenancy.operations import migrate
from vouch.tenancy.services import create_company
migrate.migrate_templates(["eu"])
with migrate.template_connection(regions.get("eu")) as alias:
    call_command("migrate", "activity", "zero", database=alias, verbosity=0)
owner = User.objects.create_user("seed@example.com", "a long enough password 123")
for i in range({count}):
    create_company(f"Seeded {{i:03d}}", "eu", owner)
"""


def test_cli_migrate_killed_mid_run_then_rerun_completes():
    from tests.live import VOUCH, cleanup, make_server

    server = make_server()
    count = 12 if SERVICES else 24  # enough to stop part-way, few enough to stay quick
    try:
        server.vouch("migrate")
        server.vouch("manage", "shell", "-c", SEED.format(count=count))
        listing = json.loads(server.vouch("tenants", "list", "--json").stdout)
        problems = [row["problem"] for row in listing if row["problem"]]  # say why a database did not open
        assert len(listing) == count and {row["schema"] for row in listing} == {BEHIND}, problems

        process = subprocess.Popen(
            [str(VOUCH), "tenants", "migrate", "--workers", "1", "--progress"],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        seen, done = b"", 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            counts = [int(n) for n in re.findall(rb"\| *(\d+)/%d" % count, seen)]
            done = max(counts, default=0)
            if 3 <= done < count:
                os.killpg(process.pid, signal.SIGKILL)  # the whole run, workers too, mid-migration
                break
        process.wait(timeout=30)
        assert 3 <= done < count, seen.decode(errors="replace")[-500:]

        listing = json.loads(server.vouch("tenants", "list", "--json").stdout)
        states = [row["schema"] for row in listing]
        assert "current" in states and BEHIND in states  # really interrupted part-way

        rerun = server.vouch("tenants", "migrate", check=False)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        summary = re.search(r"(\d+) companies: (\d+) already current, (\d+) migrated, 0 failed", rerun.stdout)
        assert summary and int(summary[2]) >= done and int(summary[2]) + int(summary[3]) == count
        assert int(summary[3]) >= 1

        check = server.vouch("tenants", "check", check=False)
        assert check.returncode == 0 and f"OK: {count} companies" in check.stdout, check.stdout
        listing = json.loads(server.vouch("tenants", "list", "--json").stdout)
        assert {row["schema"] for row in listing} == {"current"}
    finally:
        cleanup(server)
