"""Restore drills: restore backup sets into scratch space and check them (vouch.backups.checks).

``vouch backup drill [--company X | --sample N | --all] [--control]`` runs them now; ``vouch
serve`` runs a daily drill of a sample (:func:`drill_periodically`): VOUCH_DRILL_SAMPLE_PERCENT
of the companies, at least VOUCH_DRILL_SAMPLE_MIN, plus every company whose schema changed
that day, plus the control database. Each drill is timed (the restore's part is the RTO
for that company), recorded as a ``DrillRun`` and a security event; a failure names the
object or check that failed and is emailed to the operators (vouch.backups.alerts)."""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import structlog
from django.conf import settings
from django.utils import timezone

from vouch import regions
from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.backups import alerts, checks
from vouch.backups.models import BackupSet, BackupStatus, DrillOutcome, DrillRun, Scope
from vouch.backups.restore import _find_company
from vouch.backups.sources import RestoreError, fetch_company, fetch_control
from vouch.tenancy.models import Company, CompanyStatus

log = structlog.get_logger(__name__)

DRILL_EVERY = timedelta(days=1)
STALE_AFTER = timedelta(days=2)  # health: no drill for this long (once there are sets) is degraded


def scratch_root() -> Path:
    """Scratch space for drills: private, under the data directory (never the live data)."""
    root = Path(settings.DATA_DIR) / "drills"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _record(run: DrillRun) -> DrillRun:
    run.save()
    record(
        EventAction.BACKUP_DRILL,
        company=run.company_id,
        target=f"company:{run.company_id}" if run.company_id else "control",
        outcome=Outcome.SUCCESS if run.outcome == DrillOutcome.PASSED else Outcome.FAILURE,
        details={
            "set": str(run.backup_set_id or ""),
            "restore_seconds": round(run.restore_seconds, 3),
            "problem": run.problem[:200],
        },
    )
    return run


def _set_row(fetched) -> BackupSet | None:
    if fetched is None or fetched.set_id is None:
        return None
    return BackupSet.objects.filter(pk=fetched.set_id).first()


def _drill(scope: str, company, fetch, check, *, scheduled: bool = False) -> DrillRun:
    run = DrillRun(
        scope=scope,
        scheduled=scheduled,
        company_id=company.pk if company else None,
        region=company.region if company else "",
        started_at=timezone.now(),
        outcome=DrillOutcome.FAILED,
    )
    scratch = Path(tempfile.mkdtemp(prefix="drill-", dir=scratch_root()))
    fetched = None
    try:
        started = time.perf_counter()
        fetched = fetch(scratch / "restored")
        run.restore_seconds = time.perf_counter() - started
        run.backup_set = _set_row(fetched)
        run.checks = {"restore": f"ok ({fetched.source})"} | check(fetched, scratch)
        run.outcome = DrillOutcome.PASSED
    except checks.CheckFailed as exc:
        run.checks = {**run.checks, exc.check: "failed"}
        run.problem = f"{exc.what + ': ' if exc.what else ''}{exc.message}"
    except RestoreError as exc:
        run.checks = {"restore": "failed"}
        run.problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - a drill that breaks is a failed drill, recorded
        log.exception("drill failed unexpectedly", company=str(run.company_id or "control"))
        run.problem = f"the drill itself failed: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if run.backup_set is None and fetched is None:
        run.backup_set = None
    run.finished_at = timezone.now()
    return _record(run)


def drill_company(company, *, scheduled: bool = False) -> DrillRun:
    region = regions.get(company.region)
    return _drill(
        Scope.COMPANY,
        company,
        lambda to: fetch_company(company, to, use_mirror=False),
        lambda fetched, scratch: checks.check_company(fetched, company.pk, region),
        scheduled=scheduled,
    )


def drill_control(*, scheduled: bool = False) -> DrillRun:
    return _drill(Scope.CONTROL, None, lambda to: fetch_control(to), checks.check_control, scheduled=scheduled)


# --- which companies ------------------------------------------------------------


def _live_companies():
    return Company.objects.exclude(status=CompanyStatus.DELETED).filter(offline_since__isnull=True)


def schema_changed_today(now=None) -> set:
    """Companies whose latest complete set today has another schema version than their
    latest set before today."""
    now = now or timezone.now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    complete = BackupSet.objects.filter(scope=Scope.COMPANY, status=BackupStatus.COMPLETE)
    today: dict = {}
    for company_id, version in (
        complete.filter(taken_at__gte=day).order_by("taken_at").values_list("company_id", "schema_version")
    ):
        today[company_id] = version
    changed = set()
    for company_id, version in today.items():
        before = (
            complete.filter(company_id=company_id, taken_at__lt=day)
            .order_by("-taken_at")
            .values_list("schema_version", flat=True)
            .first()
        )
        if before is not None and before != version:
            changed.add(company_id)
    return changed


def daily_sample(now=None, rng: random.Random | None = None) -> list:
    companies = list(_live_companies())
    if not companies:
        return []
    size = max(settings.VOUCH_DRILL_SAMPLE_MIN, math.ceil(len(companies) * settings.VOUCH_DRILL_SAMPLE_PERCENT / 100))
    chosen = (rng or random.SystemRandom()).sample(companies, min(size, len(companies)))
    changed = schema_changed_today(now)
    picked = {c.pk for c in chosen}
    chosen += [c for c in companies if c.pk in changed and c.pk not in picked]
    return chosen


def run_drills(
    companies, *, control: bool, progress: bool = False, out=None, scheduled: bool = False
) -> list[DrillRun]:
    from tqdm import tqdm

    runs = []
    with tqdm(total=len(companies) + int(control), disable=not progress, file=sys.stderr, desc="Drilling") as bar:
        for company in companies:
            runs.append(drill_company(company, scheduled=scheduled))
            bar.update(1)
        if control:
            runs.append(drill_control(scheduled=scheduled))
            bar.update(1)
    alerts.check_and_alert()
    return runs


def run_daily(now=None) -> list[DrillRun]:
    return run_drills(daily_sample(now), control=True, scheduled=True)


def last_scheduled_start():
    """When the last daily drill started (a drill by hand does not count: it drills what
    someone chose, not the day's sample)."""
    return DrillRun.objects.filter(scheduled=True).order_by("-started_at").values_list("started_at", flat=True).first()


def daily_drill_due(now=None) -> bool:
    """Whether the daily drill is due: there are complete sets, and no daily drill
    started within ``DRILL_EVERY``."""
    now = now or timezone.now()
    if not BackupSet.objects.filter(status=BackupStatus.COMPLETE).exists():
        return False
    last = last_scheduled_start()
    return last is None or now - last >= DRILL_EVERY


def drill_periodically(stopping: threading.Event, poll_seconds: float = 600) -> None:
    """For ``vouch serve``: the daily drill (once a day, counted from the last daily drill
    recorded, so restarts do not repeat it), and the operators' alerts every
    ``poll_seconds`` (the first check at once: a server started when a drill is due
    takes it). A failure is logged and tried again; it never reaches the server."""
    from django.db import connections

    while not stopping.is_set():
        try:
            if daily_drill_due():
                runs = run_daily()
                failed = sum(1 for r in runs if r.outcome != DrillOutcome.PASSED)
                log.info("daily restore drill", drilled=len(runs), failed=failed)
            alerts.check_and_alert()
        except Exception:
            log.exception("restore drill round failed; will try again")
        finally:
            connections.close_all()
        stopping.wait(poll_seconds)


# --- health and the command ---------------------------------------------------------


def _still_failing(now) -> DrillRun | None:
    """The newest failed drill of the last days whose target has not passed a drill since
    (a later drill of another company passing does not hide it)."""
    for run in DrillRun.objects.filter(outcome=DrillOutcome.FAILED, started_at__gte=now - STALE_AFTER).order_by(
        "-started_at"
    ):
        latest = DrillRun.objects.filter(scope=run.scope, company_id=run.company_id).order_by("-started_at").first()
        if latest is None or latest.outcome == DrillOutcome.FAILED:
            return latest or run
    return None


def health() -> dict[str, dict[str, str]]:
    first_set = BackupSet.objects.filter(status=BackupStatus.COMPLETE).order_by("taken_at").first()
    last = DrillRun.objects.order_by("-started_at").first()
    if first_set is None and last is None:
        return {"drills": {"state": "off", "detail": "no backup sets yet, nothing to drill"}}
    now = timezone.now()
    failing = _still_failing(now)
    if failing is not None:
        what = f"company {failing.company_id}" if failing.company_id else "the control database"
        return {"drills": {"state": "degraded", "detail": f"the last drill of {what} failed: {failing.problem[:200]}"}}
    if last is None or now - last.started_at > STALE_AFTER:
        if first_set is not None and now - first_set.taken_at > STALE_AFTER:
            return {"drills": {"state": "degraded", "detail": "no restore drill in the last 2 days"}}
        return {"drills": {"state": "ok", "detail": "no drill yet; the first runs within a day of the first backups"}}
    return {
        "drills": {
            "state": "ok",
            "detail": f"last drill passed {last.started_at:%Y-%m-%d %H:%M} UTC, restore {last.restore_seconds:.1f} s",
        }
    }


def cli_drill(args: argparse.Namespace, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    show = err.isatty() if args.progress is None else args.progress
    try:
        if args.company:
            companies = [_find_company(args.company)]
        elif args.all:
            companies = list(_live_companies().order_by("name", "id"))
        elif args.sample is not None:
            if args.sample < 1:
                print("--sample takes a number of companies, at least 1", file=err)
                return 2
            live = list(_live_companies())
            companies = random.SystemRandom().sample(live, min(args.sample, len(live)))
        else:
            companies = daily_sample()
    except RestoreError as exc:
        print(f"Drill refused: {exc}", file=err)
        return exc.exit_code
    control = args.control or not (args.company or args.all or args.sample)
    runs = run_drills(companies, control=control, progress=show)
    if not runs:
        print("Nothing to drill: no companies and no control database set chosen.", file=out)
        return 0
    failed = 0
    for run in runs:
        what = f"company {run.company_id}" if run.company_id else "control database"
        if run.outcome == DrillOutcome.PASSED:
            print(f"PASSED  {what}  restore {run.restore_seconds:.2f} s", file=out)
        else:
            failed += 1
            print(f"FAILED  {what}  {run.problem}", file=err)
    slowest = max(run.restore_seconds for run in runs)
    print(f"{len(runs) - failed} passed, {failed} failed; slowest restore {slowest:.2f} s.", file=out)
    return 1 if failed else 0
