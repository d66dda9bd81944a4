"""Background jobs of the workflow (django-tasks): reminders, expiry at the deadline,
and the daily maintenance (overdue requests, retention, old links).

The workflow calls :func:`schedule_for_request` and :func:`schedule_for_reference`
once a change commits; they enqueue tasks to run later (``run_after``). A task's
arguments are ids and numbers only: the task queue (a control-database table, or
Redis) is not encrypted, so it must never hold a name, an address or an answer.

Every task enters its company's context itself and looks at the state *now*, not at
what it was when the task was planned: a request completed, cancelled, expired or
deleted meanwhile, a referee who answered, declined or was replaced, a deadline that
moved, or a changed reminder schedule all turn a planned task into a no-op. Sending a
reminder is a compare-and-set on the reminder counter, so two workers, a task queued
twice, or the daily safety net never send the same reminder twice."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone
from django_tasks import task

from vouch.core.context import company_context
from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.outbox import queue as outbox_queue
from vouch.outbox import store as outbox
from vouch.references import flows
from vouch.references.candidates import flows as candidate_flows
from vouch.references.desk import notices
from vouch.references.mailing import outgoing
from vouch.references.privacy import retention
from vouch.references.request_models import (
    OPEN_REFERENCE_STATUSES,
    OPEN_REQUEST_STATUSES,
    Reference,
    ReferenceRequest,
    WorkflowSettings,
)
from vouch.references.requests import flows as request_flows
from vouch.support import services as support
from vouch.tenancy import company_db
from vouch.tenancy.company_row import company_by_id
from vouch.tenancy.models import Company, CompanyStatus

log = logging.getLogger("vouch.references.jobs")

DAY = timedelta(days=1)
# Links expired or revoked longer ago than this are removed from the token index.
LINK_PURGE_AFTER = timedelta(days=30)
# Finished tasks are kept this long in the database queue (for `vouch manage shell` inquiries).
TASK_RESULTS_KEPT = timedelta(days=30)
# How often the worker's scheduler looks whether today's maintenance is planned.
SCHEDULER_INTERVAL_SECONDS = 600
# How often the worker sends outgoing mail left unsent and takes back stalled tasks.
MAIL_INTERVAL_SECONDS = 30
# Between looks at a database that is away: short at first (a restart takes a second),
# then no more often than every few seconds.
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0


# --- helpers -------------------------------------------------------------------------


def _active_company(company_id):
    """The company, or None when it is gone or switched off (its tasks then do nothing)."""
    company = company_by_id(company_id)
    if company is None or not company.is_active or company.status == CompanyStatus.DELETED:
        return None
    return company


def _already_queued(job, run_after: datetime | None, args: list) -> bool:
    """On the database backend, the same task with the same arguments and time is
    already waiting (a deadline moved twice, a link resent): do not queue it again."""
    from django_tasks_db import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    backend = job.get_backend()
    if not isinstance(backend, DatabaseBackend) or run_after is None:
        return False
    waiting = DBTaskResult.objects.filter(
        status="READY", backend_name=backend.alias, task_path=job.module_path, run_after=run_after
    ).values_list("args_kwargs", flat=True)
    return any(row == {"args": args, "kwargs": {}} for row in waiting)


def _enqueue(job, run_after: datetime | None, *args, look: bool = True) -> None:
    """Queue ``job`` with id-only arguments (checked), to run at ``run_after``. ``look``:
    first look for the same task already waiting (False for a request just created, which
    nothing can have named: the look reads the waiting tasks of that time, a cost that
    grows with the queue)."""
    arguments = [str(arg) if isinstance(arg, uuid.UUID) else arg for arg in args]
    for argument in arguments:
        if not isinstance(argument, (str, int)) or (isinstance(argument, str) and len(argument) > 64):
            raise TypeError("task arguments are ids and numbers only")
    if look and _already_queued(job, run_after, arguments):
        return
    (job.using(run_after=run_after) if run_after else job).enqueue(*arguments)


def reminder_plan(base: datetime, days: Sequence[int], sent: int, number: int, now: datetime):
    """What reminder ``number`` (1-based, planned for ``base`` + ``days[number-1]``)
    should do at ``now``: ("send", n) the latest reminder due and not yet sent,
    ("later", when) not due yet (the schedule moved later), or ("done", None)."""
    due = sum(1 for day in days if base + timedelta(days=day) <= now)
    if due > sent:
        return "send", due
    if number <= len(days):
        when = base + timedelta(days=days[number - 1])
        if when > now:
            return "later", when
    return "done", None


def _schedule(days: Sequence[int], base: datetime, sent: int, deadline: datetime):
    """(number, when) of the reminders still to send before the deadline."""
    for number, day in enumerate(days, start=1):
        when = base + timedelta(days=day)
        if number > sent and when < deadline:
            yield number, when


# --- scheduling (called by the workflow after commit) --------------------------------


def schedule_for_request(company_id, request_id, *, new: bool = False) -> None:
    """The candidate's link was (re)sent or the deadline moved: plan the request's
    expiry at the deadline, the candidate's reminders and the open referees' ones.
    ``new``: the request was just created (no task of it can be waiting yet).

    Runs after the change committed, so it never raises: a queue that cannot be
    reached is logged, and the daily maintenance still expires the request and sends
    the reminders that fall due (a day late at most)."""
    try:
        _plan_request(company_id, request_id, new=new)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not plan the tasks of request %s", request_id)


def after_request_created(company_id, request_id, mail_id) -> None:
    """A request created ``in_background`` committed: queue the one task that emails the
    candidate their link and plans the request's tasks (``request_created``). Never
    raises: when the queue cannot be reached both are done here and now instead."""
    try:
        _enqueue(request_created, None, company_id, request_id, mail_id)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not queue the work of new request %s; doing it now", request_id)
        outgoing.send_rows(company_id, [mail_id])
        schedule_for_request(company_id, request_id, new=True)


def schedule_for_reference(company_id, reference_id) -> None:
    """A referee was invited: plan their reminders (never raises, as above)."""
    try:
        _plan_reference(company_id, reference_id)
    except Exception:  # noqa: BLE001 - see schedule_for_request
        log.exception("could not plan the reminders of reference %s", reference_id)


def _plan_request(company_id, request_id, *, new: bool = False) -> None:
    company = _active_company(company_id)
    if company is None:
        return
    with company_context(company):
        reference_request = ReferenceRequest.objects.filter(pk=request_id).first()
        if reference_request is None or not reference_request.is_open:
            return
        days = WorkflowSettings.current().reminder_days
        _enqueue(expire_at_deadline, reference_request.deadline, company.pk, reference_request.pk, look=not new)
        for number, when in _schedule(
            days, reference_request.created_at, reference_request.candidate_reminders_sent, reference_request.deadline
        ):
            _enqueue(remind_candidate, when, company.pk, reference_request.pk, number, look=not new)
        for reference in reference_request.references.filter(status__in=OPEN_REFERENCE_STATUSES):
            for number, when in _schedule(
                days, reference.nominated_at, reference.reminders_sent, reference_request.deadline
            ):
                _enqueue(remind_referee, when, company.pk, reference.pk, number)


def _plan_reference(company_id, reference_id) -> None:
    company = _active_company(company_id)
    if company is None:
        return
    with company_context(company):
        reference = Reference.objects.select_related("request").filter(pk=reference_id).first()
        if reference is None or not reference.is_open or not reference.request.is_open:
            return
        days, deadline = WorkflowSettings.current().reminder_days, reference.request.deadline
        for number, when in _schedule(days, reference.nominated_at, reference.reminders_sent, deadline):
            _enqueue(remind_referee, when, company.pk, reference.pk, number)


# --- what the tasks do (also called by the daily safety net) -------------------------


def _due_reminder(base: datetime, sent: int, number: int, now: datetime, days, *, requeue) -> int | str:
    """The reminder number to send now, or what happened instead ("not due yet", with
    reminder ``number`` queued again for its new day through ``requeue`` when given;
    "nothing due")."""
    days = WorkflowSettings.current().reminder_days if days is None else days
    action, value = reminder_plan(base, days, sent, number, now)
    if action == "later":
        if requeue is not None:
            requeue(value)
        return "not due yet"
    if action == "done":
        return "nothing due"
    return value


def _send_reminder(
    company,
    reference_request: ReferenceRequest,
    *,
    base: datetime,
    sent: int,
    number: int,
    now: datetime,
    days: Sequence[int] | None,
    requeue: Callable[[datetime], object] | None,
    claim: Callable[[int], int],
    purpose: str,
    subject_id,
    event: str,
    summary: Callable[[int], str],
    mail: str,
    reference: Reference | None = None,
) -> str:
    """What both reminders do once their own checks passed: find the reminder due now
    (:func:`_due_reminder`), then in one transaction ``claim`` it (an UPDATE that counts
    it sent, 0 rows when another worker already did), issue a fresh link to
    ``subject_id``, note it on the timeline and record the ``mail`` to send on commit."""
    value = _due_reminder(base, sent, number, now, days, requeue=requeue)
    if isinstance(value, str):
        return value
    with company_db.atomic():
        if not claim(value):
            return "already sent"
        token = links.issue(company, purpose, subject_id, reference_request.deadline)
        flows.note(reference_request, event, summary(value), reference=reference)
        outgoing.record(mail, subject_id, token=token, number=value)
    return f"reminder {value} sent"


def send_candidate_reminder(
    company,
    reference_request: ReferenceRequest,
    *,
    number: int = 1,
    now: datetime | None = None,
    replan: bool = True,
    days: Sequence[int] | None = None,
) -> str:
    """Remind the candidate if a reminder is due now and they still have referees to
    nominate. Reminder ``number`` not due yet (the schedule moved later) is queued
    again for its new day when ``replan``. Returns what happened, for the task result."""
    now = now or timezone.now()
    if not reference_request.is_open:
        return "closed"
    if reference_request.deadline <= now:
        return "deadline passed"
    if candidate_flows.open_slots(reference_request) == 0:
        return "all nominated"

    def claim(value: int) -> int:
        return ReferenceRequest.objects.filter(
            pk=reference_request.pk,
            candidate_reminders_sent__lt=value,
            status__in=OPEN_REQUEST_STATUSES,
            deadline__gt=now,
        ).update(candidate_reminders_sent=value)

    return _send_reminder(
        company,
        reference_request,
        base=reference_request.created_at,
        sent=reference_request.candidate_reminders_sent,
        number=number,
        now=now,
        days=days,
        requeue=(lambda when: _enqueue(remind_candidate, when, company.pk, reference_request.pk, number))
        if replan
        else None,
        claim=claim,
        purpose=Purpose.CANDIDATE,
        subject_id=reference_request.pk,
        event="candidate_reminded",
        summary=lambda value: f"Reminder {value} sent to the candidate.",
        mail="candidate_reminder",
    )


def send_referee_reminder(
    company,
    reference: Reference,
    *,
    number: int = 1,
    now: datetime | None = None,
    replan: bool = True,
    days: Sequence[int] | None = None,
) -> str:
    """Remind a referee who has not answered, declined or been replaced, if a
    reminder is due now."""
    now = now or timezone.now()
    reference_request = reference.request
    if not reference.is_open:
        return f"reference {reference.status}"
    if not reference_request.is_open:
        return "closed"
    if reference_request.deadline <= now:
        return "deadline passed"

    def claim(value: int) -> int:
        return Reference.objects.filter(
            pk=reference.pk,
            reminders_sent__lt=value,
            status__in=OPEN_REFERENCE_STATUSES,
            # The request's conditions as a subquery on request_id, so the reference's own
            # (reminders_sent above) stay in the UPDATE's WHERE: filtering through
            # request__... makes Django move every condition into an "id IN (SELECT ...)",
            # which PostgreSQL does not re-check after waiting for a concurrent claim's lock.
            request_id__in=ReferenceRequest.objects.filter(
                pk=reference.request_id, status__in=OPEN_REQUEST_STATUSES, deadline__gt=now
            ),
        ).update(reminders_sent=value)

    return _send_reminder(
        company,
        reference_request,
        base=reference.nominated_at,
        sent=reference.reminders_sent,
        number=number,
        now=now,
        days=days,
        requeue=(lambda when: _enqueue(remind_referee, when, company.pk, reference.pk, number)) if replan else None,
        claim=claim,
        purpose=Purpose.REFEREE,
        subject_id=reference.pk,
        event="referee_reminded",
        summary=lambda value: f"Reminder {value} sent to {reference.name}.",
        mail="referee_reminder",
        reference=reference,
    )


# --- tasks ---------------------------------------------------------------------------


@task()
def request_created(company_id: str, request_id: str, mail_id: str) -> str:
    """The candidate's first email and the request's tasks, for a request created in
    the background (``after_request_created``). Run twice, it sends nothing twice (the
    mail is claimed, its tasks are no-ops once done); lost, the worker's mail round sends
    the email and the daily maintenance does what the tasks would have."""
    outgoing.send_rows(company_id, [mail_id])
    schedule_for_request(company_id, request_id, new=True)
    return "done"


@task()
def remind_candidate(company_id: str, request_id: str, number: int) -> str:
    company = _active_company(company_id)
    if company is None:
        return "company inactive"
    with company_context(company):
        reference_request = ReferenceRequest.objects.filter(pk=request_id).first()
        if reference_request is None:
            return "request deleted"
        return send_candidate_reminder(company, reference_request, number=number)


@task()
def remind_referee(company_id: str, reference_id: str, number: int) -> str:
    company = _active_company(company_id)
    if company is None:
        return "company inactive"
    with company_context(company):
        reference = Reference.objects.select_related("request").filter(pk=reference_id).first()
        if reference is None:
            return "reference deleted"
        return send_referee_reminder(company, reference, number=number)


@task()
def expire_at_deadline(company_id: str, request_id: str) -> str:
    """At the deadline the request and its open references expire, unless it closed
    meanwhile or the deadline moved (then the task for the new deadline does it)."""
    company = _active_company(company_id)
    if company is None:
        return "company inactive"
    with company_context(company):
        reference_request = ReferenceRequest.objects.filter(pk=request_id).first()
        if reference_request is None:
            return "request deleted"
        if not reference_request.is_open:
            return "closed"
        if reference_request.deadline > timezone.now():
            _enqueue(expire_at_deadline, reference_request.deadline, company.pk, reference_request.pk)
            return "deadline moved"
        return "expired" if request_flows.expire_request(reference_request) else "not expired"


@task()
def company_maintenance(company_id: str) -> dict:
    company = _active_company(company_id)
    if company is None:
        return {}
    return maintain_company(company)


@task()
def installation_maintenance() -> dict:
    return maintain_installation()


def maintain_installation(*, now: datetime | None = None) -> dict[str, int]:
    """Once a day for the installation: links expired or revoked more than 30 days
    ago leave the token index, finished task results older than that leave the
    database queue (they hold ids only, but need not pile up), and the embedded
    default's outbox drops messages older than a week."""
    from django.conf import settings

    now = now or timezone.now()
    counts = {"purged": links.purge_expired(LINK_PURGE_AFTER, now=now), "task_results": 0}
    counts["outbox"] = outbox.purge_older_than(now=now.timestamp())
    counts["account_mail_purged"] = outbox_queue.purge(now=now)

    if settings.VOUCH_TASKS_BACKEND == "database":
        from django_tasks_db.models import DBTaskResult

        counts["task_results"], _ = (
            DBTaskResult.objects.finished().filter(finished_at__lt=now - TASK_RESULTS_KEPT).delete()
        )
    return counts


# --- the daily maintenance ------------------------------------------------------------


def maintain_company(company, *, now: datetime | None = None) -> dict:
    """Once a day per company, idempotent: expire overdue open requests, send any
    reminder that is due but was not sent (a lost or late task), and apply the
    retention period. Returns counts only."""
    now = now or timezone.now()
    counts = {"expired": 0, "reminders": 0}
    with company_context(company):
        overdue = ReferenceRequest.objects.filter(status__in=OPEN_REQUEST_STATUSES, deadline__lte=now)
        for reference_request in overdue.only("pk"):
            counts["expired"] += request_flows.expire_request(reference_request, now=now)
        days = WorkflowSettings.current().reminder_days
        for reference_request in ReferenceRequest.objects.filter(status__in=OPEN_REQUEST_STATUSES, deadline__gt=now):
            if send_candidate_reminder(company, reference_request, now=now, replan=False, days=days).endswith("sent"):
                counts["reminders"] += 1
        open_references = Reference.objects.select_related("request").filter(
            status__in=OPEN_REFERENCE_STATUSES, request__status__in=OPEN_REQUEST_STATUSES, request__deadline__gt=now
        )
        for reference in open_references:
            if send_referee_reminder(company, reference, now=now, replan=False, days=days).endswith("sent"):
                counts["reminders"] += 1
        counts.update(retention.apply(company, now=now))
        counts["digests"] = notices.send_digests(now=now)
        counts["mail_purged"] = outgoing.purge_sent(now=now)
    counts["mail_sent"] = outgoing.drain_company(company)
    return counts


def run_maintenance(*, company_ids: Sequence[str] | None = None, now: datetime | None = None) -> dict[str, dict]:
    """Run the daily maintenance at once (``vouch references maintenance``): every
    active company, or the ones named, then the installation's (old links and task
    results, under "links"). Returns counts by company."""
    companies = Company.objects.filter(is_active=True).exclude(status=CompanyStatus.DELETED)
    if company_ids:
        companies = companies.filter(pk__in=company_ids)
    results = {}
    for company in companies.order_by("pk"):
        try:
            results[str(company.pk)] = maintain_company(company, now=now)
        except Exception:  # one company's failure must not stop the others
            log.exception("maintenance failed for company %s", company.pk)
            results[str(company.pk)] = {"error": 1}
    results["links"] = maintain_installation(now=now)
    return results


def plan_daily_maintenance(*, now: datetime | None = None) -> int:
    """Queue today's maintenance for each active company that has not had it yet, and
    the link purge once for the installation. The day's marker is an atomic cache
    add, so several workers plan each company once. Returns how many were queued."""
    today = (now or timezone.now()).date().isoformat()
    queued = 0
    companies = Company.objects.filter(is_active=True).exclude(status=CompanyStatus.DELETED)
    for company_id in companies.values_list("pk", flat=True):
        if cache.add(f"references:maintenance:{company_id}:{today}", 1, timeout=2 * 86400):
            _enqueue(company_maintenance, None, company_id)
            queued += 1
    if cache.add(f"references:link-purge:{today}", 1, timeout=2 * 86400):
        _enqueue(installation_maintenance, None)
        queued += 1
    return queued


class DatabaseOutage:
    """The worker's view of the control database being unreachable (a restart, a
    failover): said once in the log when it starts and once when it ends, however
    many times the worker's threads retry in between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning(
            "the database is unavailable, retrying until it is back: %s", str(exc).strip() or type(exc).__name__
        )

    def recovered(self) -> None:
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("the database is back after %.1f s", time.monotonic() - since)


database_outage = DatabaseOutage()

# Work the apps above the workflow add to each background round, registered in their
# AppConfig.ready() (vouch.webhooks queues again the deliveries nobody sent).
background_work: list[Callable[[], object]] = []


def recover_stalled_tasks(*, now: datetime | None = None) -> int:
    """Queue again the tasks marked running for longer than ``VOUCH_WORK_LEASE_SECONDS``
    (their worker died: django-tasks-db has no lease of its own, and leaves them
    running for good). Every task here is safe to run twice (see the module's
    docstring). Database backend only; RQ's own cleanup moves a dead worker's job to
    its failed registry, and the daily maintenance does its work. Returns how many."""
    from django.conf import settings

    if settings.VOUCH_TASKS_BACKEND != "database":
        return 0
    from django_tasks_db.models import DBTaskResult

    cutoff = (now or timezone.now()) - outgoing.lease()
    stalled = DBTaskResult.objects.running().filter(started_at__lt=cutoff)
    recovered = stalled.update(status="READY", started_at=None)
    if recovered:
        log.warning("%d task(s) left running by a worker that died were queued again", recovered)
    return recovered


def background_round() -> None:
    """What the worker does beside its queue, now and then: take back stalled tasks,
    send the outgoing mail nobody sent (its process died after its commit), record the
    support grants whose time ran out (access ends at the time anyway: vouch.support),
    and the work of the apps above (:data:`background_work`)."""
    from django.db.utils import InterfaceError, OperationalError

    try:
        recover_stalled_tasks()
    except (OperationalError, InterfaceError):
        raise  # the database is away: the scheduler says so once, not every round
    except Exception:  # noqa: BLE001 - the next round tries again
        log.exception("could not look for stalled tasks")
    outgoing.drain_all()
    # Account mail the mail server refused or missed (vouch.outbox.queue); never raises.
    outbox_queue.drain()
    try:
        support.expire_due()
    except (OperationalError, InterfaceError):
        raise
    except Exception:  # noqa: BLE001 - the next round tries again
        log.exception("could not record the support grants that ended")
    for work in background_work:
        try:
            work()
        except (OperationalError, InterfaceError):
            raise
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("background work %s failed", getattr(work, "__qualname__", work))


def run_scheduler(
    stopping: threading.Event,
    interval: float = SCHEDULER_INTERVAL_SECONDS,
    mail_interval: float = MAIL_INTERVAL_SECONDS,
) -> None:
    """The worker's scheduler thread: plan the day's maintenance now and every
    ``interval`` seconds, and run a :func:`background_round` every ``mail_interval``
    seconds, until ``stopping`` is set. A failure is logged and retried."""
    from django.db import close_old_connections
    from django.db.utils import InterfaceError, OperationalError

    planned_at = None
    backoff = BACKOFF_FIRST_SECONDS
    while not stopping.is_set():
        started = time.monotonic()
        wait = mail_interval
        try:
            if planned_at is None or started - planned_at >= interval:
                plan_daily_maintenance()
                planned_at = started
            background_round()
            database_outage.recovered()
            backoff = BACKOFF_FIRST_SECONDS
        except (OperationalError, InterfaceError) as exc:  # the database is away: said once, not per round
            database_outage.failed(exc)
            # Look again soon, not a whole round later: the outage is reported over as
            # soon as the database answers, and the work of this round is not held back.
            wait, backoff = min(backoff, mail_interval), min(backoff * 2, BACKOFF_MAX_SECONDS)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("could not plan the daily maintenance or send the outgoing mail")
        finally:
            close_old_connections()
        stopping.wait(wait)
