"""Driving the workflow's background tasks through time: actions happen at a chosen
moment (freezegun), and the real django-tasks-db worker runs whatever is due then."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from unittest import mock

from django.core import mail
from django.test import TestCase
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from freezegun import freeze_time

from tests.references.workflow import LINK


@contextlib.contextmanager
def at(moment: datetime):
    """Everything inside happens at ``moment`` (the clock ticks on from there); work
    done after commit (emails, scheduling) runs before leaving."""
    with freeze_time(moment, tick=True), TestCase.captureOnCommitCallbacks(execute=True):
        yield


def run_due(moment: datetime) -> list[DBTaskResult]:
    """Run, at ``moment``, every queued task that is due by then, with the worker's own
    loop (batch mode: until nothing is due). Returns the tasks it ran."""
    before = set(DBTaskResult.objects.exclude(status="READY").values_list("pk", flat=True))
    # The worker drops stale connections between tasks; here that connection holds the
    # test's transaction, so it is left alone (nothing else of the worker is changed).
    with at(moment), mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        Worker(
            queue_names=["default"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="test-worker",
            excluded_queue_names=[],
        ).run()
    return list(DBTaskResult.objects.exclude(status="READY").exclude(pk__in=before).order_by("started_at"))


def day(start: datetime, days: float, minutes: int = 1) -> datetime:
    return start + timedelta(days=days, minutes=minutes)


def mails_to(address: str, subject_part: str = "") -> list:
    return [m for m in mail.outbox if address in m.to and subject_part in m.subject]


def token_in(message) -> str:
    return LINK.findall(message.body)[0][1]


def queued(task_name: str) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(status="READY", task_path__endswith=f".{task_name}").order_by("run_after"))
