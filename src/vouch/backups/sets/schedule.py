"""Backup rounds: when sets are taken, retried, pruned and removed, and how healthy that is.

A round (``vouch backup run``, or every ``VOUCH_BACKUP_EVERY_MINUTES`` in ``vouch serve``'s
supervisor) does, in order:

1. uploads the sets still waiting in the spool (pending: their target was down);
2. takes a set of every company (active or scheduled for deletion) into its region's
   target, and one of the control database;
3. applies retention to each target it reached;
4. removes the sets of purged companies (best effort; tried again next round).

A target that fails (``StoreUnavailable``) is not asked again in the same round: later
sets for it go straight to the spool, pending. A company keeps at most one pending set:
a newer snapshot contains everything an older one did. Rounds on several servers take
turns (a lock), never run twice at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import connections
from django.utils import timezone

from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.backups.models import BackupSet, BackupStatus, Scope
from vouch.backups.sets import retention, writer
from vouch.backups.sets.format import company_prefix, control_prefix
from vouch.objectstore import StoreUnavailable, open_store
from vouch.tenancy.models import Company, CompanyStatus

log = structlog.get_logger(__name__)

# A pending set is tried again after this, doubling up to the schedule's interval.
FIRST_RETRY_SECONDS = 30.0
# Records of pruned sets are dropped after this (the target is the truth; the rows are history).
PRUNED_ROWS_KEPT = timedelta(days=2)
# A pending set with no spool and no error after this was interrupted (its process died).
INTERRUPTED_AFTER = timedelta(hours=6)


@dataclass
class RoundResult:
    complete: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    pruned: int = 0
    removed_companies: list = field(default_factory=list)
    down: dict = field(default_factory=dict)  # target URL -> error

    @property
    def ok(self) -> bool:
        return not self.pending and not self.failed and not self.down

    def add(self, row: BackupSet) -> None:
        {BackupStatus.COMPLETE: self.complete, BackupStatus.PENDING: self.pending}.get(row.status, self.failed).append(  # type: ignore[call-overload]  # typing debt
            row
        )


def interval() -> timedelta:
    return timedelta(minutes=settings.VOUCH_BACKUP_EVERY_MINUTES)


def _live_companies(company=None):
    if company is not None:
        return [company]
    return list(
        Company.objects.filter(status__in=[CompanyStatus.ACTIVE, CompanyStatus.DELETION_SCHEDULED]).order_by(
            "region", "id"
        )
    )


@contextlib.contextmanager
def round_lock(wait: bool = True):
    """One round at a time: a file lock for this machine's processes, and on PostgreSQL
    an advisory lock for every server sharing the control database. Yields whether it
    was got (``wait=False`` gives up at once)."""
    path = writer.spool_root() / ".round.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            connection = connections["default"]
            if connection.vendor != "postgresql":
                yield True
                return
            with connection.cursor() as cursor:
                key = "SELECT hashtext('vouch-backup-round')"
                cursor.execute(f"SELECT pg_advisory_lock(({key}))" if wait else f"SELECT pg_try_advisory_lock(({key}))")
                got = cursor.fetchone()[0] is not False
            try:
                yield got
            finally:
                if got:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_unlock(hashtext('vouch-backup-round'))")
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def retry_pending(result: RoundResult, *, company=None, progress: Callable[[int], object] | None = None) -> None:
    """Upload the sets waiting in the spool, oldest first; a target that fails is not
    asked again in this round."""
    rows = BackupSet.objects.filter(status=BackupStatus.PENDING).order_by("taken_at")
    if company is not None:
        rows = rows.filter(company_id=company.pk)
    for row in rows:
        if not row.error:
            # Never tried: being taken right now (by another process), or its process died
            # midway (its spool was not made durable: not to be trusted).
            if row.taken_at < timezone.now() - INTERRUPTED_AFTER:
                shutil.rmtree(writer.spool_dir(row.pk), ignore_errors=True)
                writer.fail(row, "interrupted while it was being taken")
                result.add(row)
            continue
        if row.target in result.down:
            continue
        try:
            writer.upload(row, progress=progress)
        except StoreUnavailable as exc:
            result.down[row.target] = str(exc)
        result.add(row)


def _take(result: RoundResult, take: Callable[..., BackupSet], target: str, now) -> BackupSet:
    row = take(now=now, upload_now=target not in result.down)
    if row.status == BackupStatus.PENDING:
        result.down.setdefault(target, row.error)
        _supersede(row)
    result.add(row)
    return row


def _supersede(row: BackupSet) -> None:
    """Keep one pending set per company (or control): the newest holds everything."""
    older = BackupSet.objects.filter(
        scope=row.scope, company_id=row.company_id, status=BackupStatus.PENDING, taken_at__lt=row.taken_at
    ).exclude(pk=row.pk)
    for stale in older:
        shutil.rmtree(writer.spool_dir(stale.pk), ignore_errors=True)
        stale.status = BackupStatus.FAILED
        stale.error = f"superseded by set {row.pk} while the target was unavailable"
        stale.finished_at = timezone.now()
        stale.save(update_fields=["status", "error", "finished_at"])


def run_round(
    *,
    now: datetime | None = None,
    company=None,
    control: bool = True,
    on_total: Callable[[int], object] | None = None,
    on_set: Callable[[BackupSet], object] | None = None,
    only_if_due: bool = False,
) -> RoundResult:
    """One round (see the module's docstring). ``company``: only that one (and no
    control set); ``on_total``/``on_set`` feed a progress bar. ``only_if_due``: (the
    schedule) when another server's round just ran, only retry what is pending."""
    result = RoundResult()
    with round_lock():
        retry_pending(result, company=company)
        if only_if_due and not due(now or timezone.now()):
            _record(result)
            return result
        companies = _live_companies(company)
        with_control = control and company is None
        if on_total:
            on_total(len(companies) + (1 if with_control else 0))
        for one in companies:
            target = writer.company_target(one.region)
            row = _take(result, lambda **kw: writer.write_company_set(one, **kw), target, now)  # noqa: B023
            if on_set:
                on_set(row)
        if with_control:
            row = _take(result, writer.write_control_set, writer.control_target(), now)
            if on_set:
                on_set(row)
        result.pruned = apply_retention(result, now=now or timezone.now(), companies=companies, control=with_control)
        if company is None:
            result.removed_companies = remove_purged_companies()
        # Sets retried and then superseded by this round's newer ones are not waiting any more.
        still = set(BackupSet.objects.filter(status=BackupStatus.PENDING).values_list("pk", flat=True))
        result.pending = [row for row in result.pending if row.pk in still]
    _record(result)
    return result


def _waiting() -> set[uuid.UUID]:
    return set(BackupSet.objects.filter(status=BackupStatus.PENDING).values_list("pk", flat=True))


def apply_retention(result: RoundResult, *, now: datetime, companies, control: bool) -> int:
    """Retention for each company (and control) whose target answered this round."""
    waiting, removed = _waiting(), []
    places = [(writer.company_target(c.region), company_prefix(c.pk)) for c in companies]
    if control:
        places.append((writer.control_target(), control_prefix()))
    for target, prefix in places:
        if target in result.down:
            continue
        try:
            removed += retention.prune(open_store(target), prefix, now, waiting=waiting)
        except StoreUnavailable as exc:
            result.down[target] = str(exc)
    if removed:
        BackupSet.objects.filter(pk__in=[info.set_id for info in removed]).update(status=BackupStatus.PRUNED)
    BackupSet.objects.filter(status=BackupStatus.PRUNED, taken_at__lt=now - PRUNED_ROWS_KEPT).delete()
    return len(removed)


def remove_purged_companies() -> list[uuid.UUID]:
    """Remove the sets of purged companies from their targets. Their keys are already
    destroyed (nothing can decrypt them); this frees the space and leaves nothing to
    find. Best effort: a target that is down is tried again next round (the records say
    what is left)."""
    left = (
        BackupSet.objects.filter(scope=Scope.COMPANY)
        .exclude(status=BackupStatus.PRUNED)
        .filter(company_id__in=Company.objects.filter(status=CompanyStatus.DELETED).values("pk"))
    )
    done = []
    for company_id, region in set(left.values_list("company_id", "region")):
        rows = BackupSet.objects.filter(scope=Scope.COMPANY, company_id=company_id).exclude(status=BackupStatus.PRUNED)
        for row in rows:
            shutil.rmtree(writer.spool_dir(row.pk), ignore_errors=True)
        try:
            count = open_store(writer.company_target(region)).delete_prefix(company_prefix(company_id))  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        except StoreUnavailable as exc:
            log.warning("could not remove a deleted company's backups; will try again", company=str(company_id))
            rows.update(error=f"company deleted; removing its sets failed: {exc}"[:2000])
            continue
        rows.update(status=BackupStatus.PRUNED, error="company deleted: its sets were removed")
        record(
            EventAction.BACKUP_REMOVED,
            company=company_id,
            target=f"company:{company_id}",
            details={"region": region, "objects": count},
        )
        done.append(company_id)
    return done  # type: ignore[return-value]  # typing debt: an Optional not narrowed here


def _record(result: RoundResult) -> None:
    if not (result.complete or result.pending or result.failed):
        return
    record(
        EventAction.BACKUP_TAKEN,
        target="backups",
        outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE,
        details={
            "complete": len(result.complete),
            "pending": len(result.pending),
            "failed": len(result.failed),
            "pruned": result.pruned,
            "targets_down": len(result.down),
        },
    )


# --- schedule -----------------------------------------------------------------


def due(now: datetime) -> bool:
    """Whether a round is due: the last control set was started an interval ago (or never)."""
    last = BackupSet.objects.filter(scope=Scope.CONTROL).order_by("-taken_at").values_list("taken_at", flat=True)
    latest = last.first()
    # A little early rather than a little late: rounds take time, and so does start-up.
    return latest is None or now - latest >= interval() * 0.95


def backup_periodically(stopping: threading.Event, *, clock=timezone.now) -> None:
    """For ``vouch serve``: a round when one is due (at start if the last is old), pending
    sets retried with backoff meanwhile, until ``stopping`` is set. Failures are logged
    and tried again; they never reach the server. ``VOUCH_BACKUP_EVERY_MINUTES=0``: off."""
    if settings.VOUCH_BACKUP_EVERY_MINUTES <= 0:
        log.info("scheduled backups are off (VOUCH_BACKUP_EVERY_MINUTES=0)")
        return
    backoff = FIRST_RETRY_SECONDS
    while not stopping.is_set():
        wait = min(interval().total_seconds(), 60.0)
        try:
            pending = BackupSet.objects.filter(status=BackupStatus.PENDING).exclude(error="").exists()
            result = run_round(now=clock(), only_if_due=True) if pending or due(clock()) else RoundResult()
            if result.pending or result.down:
                wait, backoff = backoff, min(backoff * 2, interval().total_seconds())
            else:
                backoff = FIRST_RETRY_SECONDS
        except Exception:
            log.exception("backup round failed; will try again")
            wait = backoff
            backoff = min(backoff * 2, interval().total_seconds())
        finally:
            connections.close_all()
        stopping.wait(wait)


# --- health -------------------------------------------------------------------


def health(now: datetime | None = None) -> dict[str, dict[str, str]]:
    """ "backups": degraded when sets wait for a target that is down, or the last complete
    backup of the control database or of some company is older than twice the schedule."""
    if settings.VOUCH_BACKUP_EVERY_MINUTES <= 0:
        return {"backups": {"state": "off", "detail": "scheduled backups are off (VOUCH_BACKUP_EVERY_MINUTES=0)"}}
    now = now or timezone.now()
    cutoff = now - 2 * interval()
    waiting = BackupSet.objects.filter(status=BackupStatus.PENDING).exclude(error="")
    count = waiting.count()
    if count:
        oldest = waiting.order_by("taken_at").values_list("taken_at", flat=True).first()
        return {
            "backups": {
                "state": "degraded",
                "detail": f"{count} backup set(s) waiting for an unreachable target since {oldest:%Y-%m-%d %H:%M} UTC",
            }
        }
    complete = BackupSet.objects.filter(status=BackupStatus.COMPLETE, taken_at__gte=cutoff)
    stale_companies = (
        Company.objects.filter(
            status__in=[CompanyStatus.ACTIVE, CompanyStatus.DELETION_SCHEDULED], created_at__lt=cutoff
        )
        .exclude(pk__in=complete.filter(scope=Scope.COMPANY).values("company_id"))
        .count()
    )
    control_recent = complete.filter(scope=Scope.CONTROL).exists()
    anything_old = (
        BackupSet.objects.filter(taken_at__lt=cutoff).exists() or Company.objects.filter(created_at__lt=cutoff).exists()
    )
    problems = []
    if not control_recent and anything_old:
        problems.append("the control database")
    if stale_companies:
        problems.append(f"{stale_companies} compan{'y' if stale_companies == 1 else 'ies'}")
    if problems:
        return {
            "backups": {
                "state": "degraded",
                "detail": f"no complete backup for over {2 * interval()} of {' and '.join(problems)}",
            }
        }
    last = (
        BackupSet.objects.filter(status=BackupStatus.COMPLETE).order_by("-taken_at").values_list("taken_at", flat=True)
    )
    latest = last.first()
    detail = f"last complete set {latest:%Y-%m-%d %H:%M} UTC" if latest else "no backup taken yet"
    return {"backups": {"state": "ok", "detail": detail}}
