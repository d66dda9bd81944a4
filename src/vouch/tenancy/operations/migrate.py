"""``vouch tenants migrate``: every company database to the current schema.

- The per-region templates go first, so companies created from now on start current.
- A fast read-only probe (:mod:`.probe`, threads) sorts out the databases that are
  already current; only the others go to a process pool. Django's migrate is not
  thread-safe, so each worker is its own process running ``django.setup()``.
- Each worker re-checks with Django (``schema.pending`` in the company's context)
  and migrates one company at a time. Every migration is applied and recorded in
  the company's own database, so an interrupted run is resumed by running again:
  what was done is current and skipped.
- One broken database (missing, not a database, another company's, a failing
  migration, even one that kills its worker process) is reported as failed and
  never stops the others.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.conf import settings

from vouch import regions
from vouch.config import sqlite_database
from vouch.core.context import alias_for, company_context
from vouch.tenancy import connections, provisioning, schema
from vouch.tenancy.connections import ensure_alias, release
from vouch.tenancy.operations.probe import probe, probe_many, short_error

CURRENT = "current"
MIGRATED = "migrated"
FAILED = "failed"

# Settings a worker takes from the command that started it rather than from its
# own start-up: the command may run with settings of its own (tests do), and a
# worker must migrate exactly the databases the command chose.
FORWARDED_SETTINGS = (
    "VOUCH_REGIONS",
    "VOUCH_REGION_CONFIG",
    "VOUCH_COMPANY_DATABASE_PREFIX",
    "VOUCH_COMPANY_APPS",
    "MIGRATION_MODULES",
)


@dataclass
class CompanyResult:
    company_id: str
    name: str
    region: str
    outcome: str  # current / migrated / failed
    applied: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def summary(self) -> str:
        if self.outcome == CURRENT:
            return "already current"
        if self.outcome == MIGRATED:
            return f"migrated {len(self.applied)}"
        return f"failed: {self.reason}"


@dataclass
class TemplateResult:
    region: str
    outcome: str
    applied: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class MigrateReport:
    templates: list[TemplateResult] = field(default_factory=list)
    companies: list[CompanyResult] = field(default_factory=list)
    interrupted: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for result in self.companies if result.outcome == outcome)

    @property
    def failures(self) -> list[CompanyResult]:
        return [result for result in self.companies if result.outcome == FAILED]

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.failures and all(t.outcome != FAILED for t in self.templates)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# --- Templates ------------------------------------------------------------------


def migrate_templates(region_names: Iterable[str] | None = None) -> list[TemplateResult]:
    """Bring each region's template to the current schema (the copy new companies start from)."""
    results = []
    for name in region_names or settings.VOUCH_REGIONS:
        try:
            region = regions.get(name)
            # Provisioning remembers templates it has already checked in this process;
            # forget that, so the template's real state is looked at now.
            provisioning._current_templates.discard((region.name, str(schema.targets())))
            before = _template_pending(region)
            if region.uses_postgresql:
                with provisioning._admin(region) as admin:
                    # The same lock provisioning takes: no company is being cloned meanwhile.
                    admin.execute("SELECT pg_advisory_lock(hashtext('vouch-company-template'))")
                    try:
                        provisioning._prepare_postgresql_template(region, admin)
                    finally:
                        admin.execute("SELECT pg_advisory_unlock(hashtext('vouch-company-template'))")
            else:
                provisioning._sqlite_template(region)
            results.append(TemplateResult(name, MIGRATED if before else CURRENT, before))
        except Exception as exc:  # noqa: BLE001 - reported; the companies still get migrated
            results.append(TemplateResult(name, FAILED, reason=short_error(exc)))
    return results


def _template_pending(region: regions.Region) -> list[str]:
    """What the template lacks now (for the report); [] when it does not exist yet."""
    with template_connection(region) as alias:
        return schema.pending(alias) if alias else []


@contextmanager
def template_connection(region: regions.Region) -> Iterator[str | None]:
    """This thread's Django alias for ``region``'s template (None if there is none yet),
    closed afterwards: PostgreSQL clones a template only while nobody is connected."""
    from django.db import connections as django_connections

    if region.uses_postgresql:
        name = provisioning._template_name()
        with provisioning._admin(region) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                yield None
                return
        entry = connections.database_settings(uuid.UUID(int=0), region.name, admin=True) | {"NAME": name}
    else:
        path = region.root / "template.sqlite3"
        if not path.exists():
            yield None
            return
        entry = sqlite_database(path)
    entry.pop("VOUCH_COMPANY_ID", None)
    alias = provisioning.TEMPLATE_PREFIX + region.name
    connections.add_alias(alias, entry)
    try:
        yield alias
    finally:
        django_connections[alias].close()
        connections.release(alias)


# --- Workers --------------------------------------------------------------------


def _init_worker(settings_module: str, forwarded: dict) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.conf import settings as worker_settings

    for name, value in forwarded.items():
        setattr(worker_settings, name, value)


def migrate_one(company_id: str, name: str, region: str) -> CompanyResult:
    """Bring one company's database to the current schema (runs in a worker process)."""

    result = CompanyResult(company_id, name, region, FAILED)
    # Look first without Django: a missing, broken or foreign database is reported
    # plainly instead of surfacing as an error from deep inside migrate.
    found = probe(company_id, region)
    if not found.identity_ok:
        result.reason = found.problem
        return result
    try:
        with company_context(SimpleNamespace(pk=company_id, region=region)) as context:
            # Migrations change the schema, which the company's own role may not: the
            # configured account runs them (on SQLite the settings are the same).
            alias = ensure_alias(context, admin=True)
            missing = schema.pending(alias)
            if missing:
                schema.migrate(alias)
                # New tables and sequences: the company's role may use their rows.
                provisioning.regrant(company_id, region)  # type: ignore[arg-type]  # typing debt
                # Checked again straight from the database (the cheap way: a second
                # Django migration plan costs as much as the migration itself here).
                left = probe(company_id, region).pending
                if left:
                    result.reason = f"still behind after migrating: {', '.join(left)}"
                    return result
                result.applied = missing
                result.outcome = MIGRATED
            else:
                result.outcome = CURRENT
    except Exception as exc:  # noqa: BLE001 - reported; the other companies go on
        result.reason = f"{type(exc).__name__}: {short_error(exc)}"
    finally:
        # Closed, not kept: a run visits each company once, and on SQLite the last close
        # checkpoints and removes the write-ahead log, with any page a migration
        # rewrote (the plaintext the log encryption replaced, say).

        release(alias_for(company_id))
    return result


# --- The run --------------------------------------------------------------------


def companies_to_migrate(company_ids: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """``(id, name, region)`` of every company whose database should be current:
    all but deleted ones (a suspended company is migrated too, so it works the
    moment it is reactivated). Unknown ids raise ``LookupError``."""
    # imported here: models, and spawned workers import this module before django.setup()
    from vouch.tenancy.models import Company

    rows = Company.objects.order_by("name", "id")
    if any(f.name == "status" for f in Company._meta.concrete_fields):
        rows = rows.exclude(status="deleted")
    if company_ids:
        wanted = set()
        for cid in company_ids:
            try:
                wanted.add(str(uuid.UUID(str(cid))))
            except ValueError:
                raise LookupError(f"not a company id: {cid!r}") from None
        rows = rows.filter(id__in=wanted)
    result = [(str(cid), name, region) for cid, name, region in rows.values_list("id", "name", "region")]
    if company_ids:
        missing = wanted - {cid for cid, _, _ in result}
        if missing:
            raise LookupError(f"no such company: {', '.join(sorted(missing))}")
    return result


def migrate_all(
    company_ids: Iterable[str] | None = None,
    *,
    workers: int | None = None,
    progress: Callable[[CompanyResult], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    task: Callable[[str, str, str], CompanyResult] = migrate_one,
) -> MigrateReport:
    """Migrate the templates, then every company database that is behind.

    ``progress`` is called with each company's result as it comes in; ``task`` is
    what a worker runs per company (tests swap in one that misbehaves)."""
    companies = companies_to_migrate(company_ids)
    report = MigrateReport()
    report.templates = migrate_templates(sorted({region for _, _, region in companies} | set(settings.VOUCH_REGIONS)))
    if on_total:
        on_total(len(companies))
    # Each PostgreSQL company database its own role first (companies made before roles
    # existed get theirs here); one that cannot have it is reported and left alone.
    for result in ensure_roles(companies):
        report.companies.append(result)
        if progress:
            progress(result)
    failed = {result.company_id for result in report.companies}
    companies = [company for company in companies if company[0] not in failed]
    found = probe_many([(cid, region) for cid, _, region in companies])
    behind = []
    for cid, name, region in companies:
        if found[cid].healthy:
            report.companies.append(CompanyResult(cid, name, region, CURRENT))
            if progress:
                progress(report.companies[-1])
        else:
            # Behind or broken: the worker checks again with Django and reports.
            behind.append((cid, name, region))
    if behind:
        try:
            with _workers_skip_main():
                _run_pool(behind, workers or default_workers(), report, progress, task)
        except KeyboardInterrupt:
            report.interrupted = True
    return report


def ensure_roles(companies: list[tuple[str, str, str]]) -> list[CompanyResult]:
    """Give every PostgreSQL company database that lacks it its own role (see
    ``provisioning.ensure_role``); the failures, as results. Databases whose role already
    exists and is the only one besides the configured account allowed to connect are
    skipped after one query per server, so a routine run costs next to nothing."""
    failures: list[CompanyResult] = []
    by_region: dict[str, list[tuple[str, str, str]]] = {}
    for company in companies:
        by_region.setdefault(company[2], []).append(company)
    for region_name, members in sorted(by_region.items()):
        try:
            region = regions.get(region_name)
            if not region.uses_postgresql:
                continue
            done = provisioning.roles_in_place(region, [uuid.UUID(cid) for cid, _, _ in members])
        except Exception as exc:  # noqa: BLE001 - reported; the other regions go on
            reason = f"its role: {short_error(exc)}"
            failures.extend(CompanyResult(*company, FAILED, reason=reason) for company in members)
            continue
        for company in members:
            if uuid.UUID(company[0]) in done:
                continue
            if not provisioning.exists(uuid.UUID(company[0]), region_name):
                continue  # the probe reports it as missing
            try:
                if not provisioning.ensure_role(uuid.UUID(company[0]), region_name):
                    failures.append(CompanyResult(*company, FAILED, reason="its role has no password: it has no keys"))
            except Exception as exc:  # noqa: BLE001 - reported; the other companies go on
                failures.append(CompanyResult(*company, FAILED, reason=f"its role: {short_error(exc)}"))
    return failures


@contextmanager
def _workers_skip_main() -> Iterator[None]:
    """Start workers without re-running this process's ``__main__``.

    A spawned worker normally first re-imports the parent's main script. Here that is
    the ``vouch`` launcher (which would run the whole command again), pytest, or a
    shell: none of which a worker needs, since everything it runs is importable. So
    while workers start, ``__main__`` is a bare module and they skip that step."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _executor(workers: int) -> ProcessPoolExecutor:
    forwarded = {name: getattr(settings, name) for name in FORWARDED_SETTINGS if hasattr(settings, name)}
    return ProcessPoolExecutor(
        max_workers=workers,
        # spawn, not fork: a forked child would share the parent's open database
        # connections and threads.
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.environ.get("DJANGO_SETTINGS_MODULE", "vouch.settings"), forwarded),
    )


def _run_pool(companies, workers, report, progress, task) -> None:
    def done(result: CompanyResult) -> None:
        report.companies.append(result)
        if progress:
            progress(result)

    queue = list(reversed(companies))
    suspects: list[tuple[str, str, str]] = []
    while queue:
        # At most ``workers`` companies in flight: if a worker process dies (a crash
        # in a database driver, the OOM killer...) it takes only those with it.
        broken = False
        pool = _executor(min(workers, len(queue)))
        try:
            running: dict = {}
            while (queue or running) and not broken:
                while queue and len(running) < workers:
                    company = queue.pop()
                    running[pool.submit(task, *company)] = company
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    company = running.pop(future)
                    try:
                        done(future.result())
                    except BrokenProcessPool:
                        suspects.append(company)
                        broken = True
                    except Exception as exc:  # noqa: BLE001 - e.g. a result that would not pickle
                        done(CompanyResult(*company, FAILED, reason=short_error(exc)))  # type: ignore[call-arg, misc]  # mypy cannot count the fields unpacked from company
            suspects.extend(running.values())  # only non-empty when the pool broke
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    # Which of the companies in flight killed its worker is unknown: each is tried
    # again alone, so only the culprit is reported as failed.
    for company in suspects:
        with _executor(1) as pool:
            try:
                done(pool.submit(task, *company).result())
            except BrokenProcessPool:
                done(CompanyResult(*company, FAILED, reason="the worker process died migrating it"))
