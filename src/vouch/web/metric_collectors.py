"""Gauges read at scrape time, once for the whole installation (not per worker): the
task queue (django-tasks' database backend or RQ), the mirror's lag and the age of the
last backups. Each part that fails is logged and left out; the others still answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vouch.backups.mirror import lag as mirror_lag
from vouch.backups.mirror import plan as mirror_plan
from vouch.backups.models import BackupSet, BackupStatus, Scope
from vouch.outbox import queue as outbox_queue
from vouch.tenancy.models import Company, CompanyStatus

log = logging.getLogger("vouch.web")


def _since(moment: datetime) -> float:
    # RQ's times are UTC, naive in some versions.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return max(0.0, (timezone.now() - aware).total_seconds())


def _queue() -> tuple[int, float]:
    """(tasks ready to run, seconds the oldest of them has waited)."""
    backend = str(settings.TASKS["default"]["BACKEND"])
    if backend.endswith("RQBackend"):
        # imported here: django-rq is installed only with the Redis backend
        import django_rq

        depth, oldest = 0, 0.0
        for name in settings.TASKS["default"].get("QUEUES", ["default"]):
            queue = django_rq.get_queue(name)
            depth += queue.count
            head = queue.get_jobs(0, 1)
            if head and head[0].enqueued_at is not None:
                oldest = max(oldest, _since(head[0].enqueued_at))
        return depth, oldest
    if backend.endswith("DatabaseBackend"):
        # imported here: django-tasks-db's models, only with the database backend
        from django_tasks_db.models import DBTaskResult, get_date_max

        ready = DBTaskResult.objects.ready()
        depth = ready.count()
        if not depth:
            return 0, 0.0
        # A task with no run_after became due when it was queued; another when its time came.
        queued = ready.filter(run_after=get_date_max()).aggregate(first=Min("enqueued_at"))["first"]
        due = ready.exclude(run_after=get_date_max()).aggregate(first=Min("run_after"))["first"]
        first = min(moment for moment in (queued, due) if moment is not None)
        return depth, _since(first)
    return 0, 0.0  # the immediate backend (tests): nothing waits


def _mirror() -> float | None:
    """Seconds the most behind mirrored database waits; None when nothing is mirrored."""
    items = mirror_plan.mirrored()
    if not items:
        return None
    now = time.time()
    return max((entry.behind_seconds(now) for item in items for entry in mirror_lag.lags(item)), default=0.0)


def _backups() -> dict[str, float]:
    """Age of the last complete backup of the control database, and the oldest of the
    live companies' last complete backups."""
    now = timezone.now()
    complete = BackupSet.objects.filter(status=BackupStatus.COMPLETE)
    ages = {}
    control = complete.filter(scope=Scope.CONTROL).aggregate(last=Max("taken_at"))["last"]
    if control is not None:
        ages["control"] = (now - control).total_seconds()
    live = Company.objects.filter(status__in=[CompanyStatus.ACTIVE, CompanyStatus.DELETION_SCHEDULED]).values("pk")
    latest = (
        complete.filter(scope=Scope.COMPANY, company_id__in=live)
        .values("company_id")
        .annotate(last=Max("taken_at"))
        .aggregate(oldest=Min("last"))["oldest"]
    )
    if latest is not None:
        ages["company"] = (now - latest).total_seconds()
    return ages


class OperationsCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("vouch_task_queue_depth", "Background tasks ready to run and not yet taken")
        age = GaugeMetricFamily(
            "vouch_task_queue_oldest_age_seconds", "How long the oldest task ready to run has waited (0 when none)"
        )
        try:
            count, oldest = _queue()
            depth.add_metric([], count)
            age.add_metric([], oldest)
        except Exception:
            log.exception("metrics: the task queue could not be read")
        yield depth
        yield age
        lag = GaugeMetricFamily(
            "vouch_mirror_lag_seconds",
            "How long the most behind mirrored database has waited for its copy (absent on PostgreSQL)",
        )
        try:
            seconds = _mirror()
            if seconds is not None:
                lag.add_metric([], seconds)
        except Exception:
            log.exception("metrics: the mirror's lag could not be read")
        yield lag
        backups = GaugeMetricFamily(
            "vouch_backup_age_seconds",
            "Age of the last complete backup: of the control database, and the oldest of the companies' last ones",
            labels=["scope"],
        )
        try:
            for scope, seconds in _backups().items():
                backups.add_metric([scope], seconds)
        except Exception:
            log.exception("metrics: the backups' age could not be read")
        yield backups
        mail = GaugeMetricFamily(
            "vouch_account_mail",
            "Account emails the mail server did not take: waiting for a retry, or given up after three days",
            labels=["state"],
        )
        try:
            for state, count in outbox_queue.waiting().items():
                mail.add_metric([state], count)
        except Exception:
            log.exception("metrics: the account mail queue could not be read")
        yield mail
