"""Telling the operators: a failed restore drill, or a backup older than twice its schedule.

Every operator account (``is_staff``, active) gets one email per round naming the new
problems (through Django's mail: the local outbox on the embedded default). Each problem
is mailed once, not on every round: a failed drill by its run, a stale backup by the
last set it had (so a backup that goes stale again later is a new problem). What was
sent is remembered in the shared cache (the database cache on the embedded default,
Redis otherwise), so several servers and restarts do not repeat it. Only ids, times
and check names go out, never a company's name or data."""

from __future__ import annotations

from datetime import timedelta

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db.models import Max
from django.utils import timezone

from vouch.accounts.models import User
from vouch.backups.models import BackupSet, BackupStatus, DrillOutcome, DrillRun, Scope
from vouch.tenancy.models import Company, CompanyStatus

log = structlog.get_logger(__name__)

REMEMBER_SECONDS = 60 * 24 * 3600  # a problem mailed is not mailed again for this long
LOOKBACK = timedelta(days=3)  # failed drills older than this are old news


def stale_after() -> timedelta:
    return timedelta(minutes=2 * settings.VOUCH_BACKUP_EVERY_MINUTES)


def problems(now=None) -> list[tuple[str, str]]:
    """(problem key, line for the email) for every current problem."""
    now = now or timezone.now()
    found: list[tuple[str, str]] = []
    for run in DrillRun.objects.filter(outcome=DrillOutcome.FAILED, started_at__gte=now - LOOKBACK).order_by(
        "started_at"
    ):
        latest = DrillRun.objects.filter(scope=run.scope, company_id=run.company_id).order_by("-started_at").first()
        if latest is not None and latest.pk != run.pk and latest.outcome == DrillOutcome.PASSED:
            continue  # drilled again since, and passed
        what = f"company {run.company_id}" if run.company_id else "the control database"
        found.append(
            (f"drill:{run.pk}", f"Restore drill of {what} failed at {run.started_at:%Y-%m-%d %H:%M} UTC: {run.problem}")
        )
    limit = now - stale_after()
    latest_sets = (
        BackupSet.objects.filter(status=BackupStatus.COMPLETE)
        .values("scope", "company_id")
        .annotate(last=Max("taken_at"))
    )
    live = set(Company.objects.exclude(status=CompanyStatus.DELETED).values_list("pk", flat=True))
    for row in latest_sets:
        if row["scope"] == Scope.COMPANY and row["company_id"] not in live:
            continue
        if row["last"] < limit:
            what = f"company {row['company_id']}" if row["company_id"] else "the control database"
            found.append(
                (
                    f"stale:{row['scope']}:{row['company_id']}:{row['last'].isoformat()}",
                    f"The last backup of {what} was taken {row['last']:%Y-%m-%d %H:%M} UTC, more than twice "
                    f"the schedule ({settings.VOUCH_BACKUP_EVERY_MINUTES} minutes) ago.",
                )
            )
    return found


def _cache_key(problem: str) -> str:
    return f"vouch:backups:alerted:{problem}"


def check_and_alert(now=None) -> int:
    """Mail the operators about problems not mailed before; returns how many were new."""
    new = [(key, line) for key, line in problems(now) if not cache.get(_cache_key(key))]
    if not new:
        return 0
    recipients = list(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    if not recipients:
        log.warning("backup problems but no operator account to tell", problems=len(new))
        return 0
    body = (
        "Vouch found problems with backups or restore drills:\n\n"
        + "\n".join(f"- {line}" for _, line in new)
        + f"\n\nDetails: {settings.PUBLIC_URL}/operator/backups/ and `vouch backup status`.\n"
    )
    subject = "[Vouch] Backup problem: " + (
        "a restore drill failed" if new[0][0].startswith("drill") else "backups are late"
    )
    try:
        send_mail(subject, body, None, recipients)
    except Exception:
        log.exception("could not email the operators about backup problems; will try again")
        return 0
    for key, _ in new:
        cache.set(_cache_key(key), 1, REMEMBER_SECONDS)
    return len(new)
