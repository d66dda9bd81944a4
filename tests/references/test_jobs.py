"""Reminders, expiry at the deadline and the daily maintenance, run by the real
django-tasks-db worker at chosen moments: reminders go out on the schedule's days,
once each, with a fresh link, and stop when they should."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connections, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import make_company
from tests.references.concurrency import wait_until_blocked
from tests.references.jobs_helpers import at, day, mails_to, queued, run_due, token_in
from tests.references.test_workflow_core import IDENTITY, answers_for
from tests.references.workflow import REFEREES, REQUEST, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.references import jobs
from vouch.references.models import Reference, ReferenceRequest
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import ReferenceStatus, RequestStatus, TimelineEvent, WorkflowSettings
from vouch.references.requests import flows as request_flows
from vouch.tenancy import connections as tenancy_connections

pytestmark = pytest.mark.django_db

CANDIDATE = REQUEST["email"]
RITA, PAT, MORGAN = (referee["email"] for referee in REFEREES)


def _start(company, members, **overrides):
    """A request made now (day 0); returns (request, its creation time, candidate token)."""
    reference_request, token = make_request(company, members[Role.RECRUITER].user, **overrides)
    return reference_request, reference_request.created_at, token


def _nominate_at(company, reference_request, moment, referee, replacing=None):
    with at(moment):
        return nominate(company, reference_request, referee, replacing=replacing)


def _reload(company, model, pk):
    with company_context(company):
        return model.objects.get(pk=pk)


def _timeline(company, reference_request, kind):
    with company_context(company):
        return [event.summary for event in TimelineEvent.objects.filter(request_id=reference_request.pk, kind=kind)]


def test_a_request_plans_its_expiry_and_the_candidates_reminders(company, members):
    reference_request, start, _ = _start(company, members)
    assert [task.run_after for task in queued("expire_at_deadline")] == [reference_request.deadline]
    assert [task.run_after for task in queued("remind_candidate")] == [start + timedelta(days=d) for d in (2, 4, 6)]
    assert [task.args_kwargs["args"][2] for task in queued("remind_candidate")] == [1, 2, 3]


def test_candidate_reminders_go_out_on_their_days_once_each_with_a_fresh_link(company, members):
    reference_request, start, first_token = _start(company, members)
    mail.outbox.clear()
    run_due(day(start, 1))
    assert mails_to(CANDIDATE) == []

    run_due(day(start, 2))
    [reminder] = mails_to(CANDIDATE)
    assert reminder.subject.startswith("[Vouch] Reminder:")
    fresh = token_in(reminder)
    assert fresh != first_token
    # An additional link: the earlier one keeps working.
    assert links.resolve(fresh, "candidate").subject_id == reference_request.pk
    assert links.resolve(first_token, "candidate").subject_id == reference_request.pk
    assert _reload(company, ReferenceRequest, reference_request.pk).candidate_reminders_sent == 1
    assert _timeline(company, reference_request, "candidate_reminded") == ["Reminder 1 sent to the candidate."]

    # Running again the same day, or the daily safety net, sends nothing more.
    run_due(day(start, 2, minutes=30))
    assert jobs.maintain_company(company, now=day(start, 2, minutes=40))["reminders"] == 0
    assert len(mails_to(CANDIDATE)) == 1

    run_due(day(start, 4))
    run_due(day(start, 6))
    assert len(mails_to(CANDIDATE)) == 3
    assert _timeline(company, reference_request, "candidate_reminded")[-1] == "Reminder 3 sent to the candidate."
    run_due(day(start, 9))
    assert len(mails_to(CANDIDATE)) == 3


def test_candidate_reminders_stop_once_every_referee_is_nominated(company, members):
    reference_request, start, _ = _start(company, members)
    run_due(day(start, 2))
    _nominate_at(company, reference_request, day(start, 3), REFEREES[0])
    _nominate_at(company, reference_request, day(start, 3, minutes=5), REFEREES[1])
    mail.outbox.clear()
    ran = run_due(day(start, 6))
    assert mails_to(CANDIDATE) == []
    results = {task.return_value for task in ran if task.task_path.endswith("remind_candidate")}
    assert results == {"all nominated"}


def test_a_late_worker_sends_only_the_latest_reminder_due(company, members):
    """A worker that was down for days catches up with one reminder, not a burst."""
    reference_request, start, _ = _start(company, members)
    mail.outbox.clear()
    run_due(day(start, 5))
    [reminder] = mails_to(CANDIDATE)
    assert _reload(company, ReferenceRequest, reference_request.pk).candidate_reminders_sent == 2
    assert _timeline(company, reference_request, "candidate_reminded") == ["Reminder 2 sent to the candidate."]


def test_referee_reminders_stop_on_completion_decline_and_replacement(company, members):
    reference_request, start, _ = _start(company, members)
    rita, _ = _nominate_at(company, reference_request, start, REFEREES[0])
    pat, _ = _nominate_at(company, reference_request, start, REFEREES[1])
    mail.outbox.clear()
    run_due(day(start, 2))
    assert len(mails_to(RITA, "Reminder")) == len(mails_to(PAT, "Reminder")) == 1
    assert sorted(_timeline(company, reference_request, "referee_reminded")) == [
        "Reminder 1 sent to Pat Peer.",
        "Reminder 1 sent to Rita Referee.",
    ]
    fresh = token_in(mails_to(RITA, "Reminder")[0])
    assert links.resolve(fresh, "referee").subject_id == rita.pk

    with at(day(start, 3)), company_context(company):
        referee_flows.confirm_referee(rita, **IDENTITY)
        assert referee_flows.submit_answers(rita, answers_for(reference_request)) == {}
        referee_flows.decline(pat, "I never worked with them.")
    morgan, _ = _nominate_at(company, reference_request, day(start, 3, minutes=10), REFEREES[2], replacing=pat)
    mail.outbox.clear()
    run_due(day(start, 4))
    # Rita answered and Pat declined (then was replaced): no more reminders for them.
    assert mails_to(RITA) == [] and mails_to(PAT) == []
    # Morgan's schedule counts from their own invitation (day 3): first reminder on day 5.
    assert mails_to(MORGAN) == []
    run_due(day(start, 5, minutes=15))
    assert len(mails_to(MORGAN, "Reminder")) == 1
    assert _reload(company, Reference, morgan.pk).reminders_sent == 1
    assert _reload(company, Reference, pat.pk).reminders_sent == 1


def test_a_replaced_overdue_referee_is_not_reminded(company, members):
    reference_request, start, _ = _start(company, members)
    rita, _ = _nominate_at(company, reference_request, start, REFEREES[0])
    _nominate_at(company, reference_request, start, REFEREES[1])
    with company_context(company):
        WorkflowSettings.objects.filter(pk=1).update(replace_after_days=1)
    _nominate_at(company, reference_request, day(start, 1), REFEREES[2], replacing=rita)
    assert _reload(company, Reference, rita.pk).status == ReferenceStatus.REPLACED
    mail.outbox.clear()
    ran = run_due(day(start, 2))
    assert mails_to(RITA) == []
    assert "reference replaced" in {task.return_value for task in ran}


def test_cancelling_stops_every_reminder(company, members):
    reference_request, start, _ = _start(company, members)
    _nominate_at(company, reference_request, start, REFEREES[0])
    with at(day(start, 1)), company_context(company):
        request_flows.cancel_request(reference_request, actor=members[Role.RECRUITER].user)
    mail.outbox.clear()
    ran = run_due(day(start, 15))
    assert mail.outbox == []
    assert ran and all(task.status == "SUCCESSFUL" for task in ran)
    assert {task.return_value for task in ran} <= {"closed", "reference cancelled"}


def test_at_the_deadline_the_request_expires_and_reminders_stop(company, members):
    reference_request, start, candidate_token = _start(company, members, deadline=timezone.now() + timedelta(days=3))
    # Reminders on days 4 and 6 would come after the deadline: they are not even queued.
    assert len(queued("remind_candidate")) == 1
    rita, rita_token = _nominate_at(company, reference_request, start, REFEREES[0])
    mail.outbox.clear()
    run_due(day(start, 2))
    assert len(mails_to(CANDIDATE, "Reminder")) == len(mails_to(RITA, "Reminder")) == 1

    ran = run_due(reference_request.deadline + timedelta(seconds=1))
    assert [task.return_value for task in ran if task.task_path.endswith("expire_at_deadline")] == ["expired"]
    expired = _reload(company, ReferenceRequest, reference_request.pk)
    assert expired.status == RequestStatus.EXPIRED and expired.closed_at is not None
    assert _reload(company, Reference, rita.pk).status == ReferenceStatus.EXPIRED
    assert links.resolve(candidate_token, "candidate") is None
    assert links.resolve(rita_token, "referee") is None
    mail.outbox.clear()
    run_due(day(start, 10))
    assert mail.outbox == []


def test_a_deadline_moved_later_keeps_the_request_open_and_reminders_going(company, members):
    reference_request, start, _ = _start(company, members, deadline=timezone.now() + timedelta(days=3))
    with at(day(start, 1)), company_context(company):
        request_flows.change_deadline(reference_request, start + timedelta(days=10), actor=members[Role.RECRUITER].user)
    # The moved deadline plans the reminders that now fall before it.
    assert len(queued("remind_candidate")) == 3
    # The task planned for the first deadline finds it moved and leaves the request open.
    ran = run_due(day(start, 3))
    assert "deadline moved" in {task.return_value for task in ran}
    assert _reload(company, ReferenceRequest, reference_request.pk).status == RequestStatus.AWAITING_CANDIDATE
    mail.outbox.clear()
    run_due(day(start, 4))
    assert len(mails_to(CANDIDATE, "Reminder")) == 1
    run_due(start + timedelta(days=10, seconds=1))
    assert _reload(company, ReferenceRequest, reference_request.pk).status == RequestStatus.EXPIRED


def test_a_deadline_moved_earlier_stops_the_reminders_after_it(company, members):
    reference_request, start, _ = _start(company, members)
    with at(day(start, 1)), company_context(company):
        request_flows.change_deadline(reference_request, start + timedelta(days=3), actor=members[Role.RECRUITER].user)
    mail.outbox.clear()
    run_due(day(start, 2))
    assert len(mails_to(CANDIDATE, "Reminder")) == 1
    run_due(day(start, 7))
    assert len(mails_to(CANDIDATE, "Reminder")) == 1
    assert _reload(company, ReferenceRequest, reference_request.pk).status == RequestStatus.EXPIRED


def test_a_deleted_request_leaves_its_tasks_with_nothing_to_do(company, members):
    reference_request, start, _ = _start(company, members)
    with company_context(company):
        request_flows.delete_request(reference_request, actor=members[Role.RECRUITER].user)
    mail.outbox.clear()
    ran = run_due(day(start, 20))
    assert mail.outbox == []
    assert {task.return_value for task in ran} == {"request deleted"}
    assert all(task.status == "SUCCESSFUL" for task in ran)


def test_the_company_schedule_is_used(company, members):
    with company_context(company):
        settings = WorkflowSettings.current()
        settings.reminder_days = [1, 3]
        settings.save()
    reference_request, start, _ = _start(company, members)
    assert [task.run_after for task in queued("remind_candidate")] == [start + timedelta(days=d) for d in (1, 3)]
    mail.outbox.clear()
    run_due(day(start, 1))
    assert len(mails_to(CANDIDATE, "Reminder")) == 1


def test_the_task_queue_holds_ids_and_numbers_only(company, members):
    """The queue is not encrypted: no name, address, role or answer may reach it."""
    reference_request, start, _ = _start(company, members)
    rita, _ = _nominate_at(company, reference_request, start, REFEREES[0])
    _nominate_at(company, reference_request, start, REFEREES[1])
    run_due(day(start, 2))
    with company_context(company):
        referee_flows.confirm_referee(rita, **IDENTITY)
        referee_flows.submit_answers(rita, answers_for(reference_request))
    run_due(day(start, 7))
    tasks = list(DBTaskResult.objects.all())
    assert len(tasks) >= 8
    personal = [REQUEST["name"], CANDIDATE, REQUEST["phone"], REQUEST["role"], REQUEST["guidance"]]
    personal += [value for referee in REFEREES for value in (referee["name"], referee["email"], referee["phone"])]
    personal += ["Casey", "Rita", "casey", "example.org", "Head of Finance", "Reliable"]
    for task in tasks:
        assert task.status != "FAILED", task.traceback
        for argument in task.args_kwargs["args"]:
            assert isinstance(argument, int) or len(argument) <= 36, argument
        assert task.args_kwargs["kwargs"] == {}
        stored = json.dumps([task.args_kwargs, task.return_value, task.traceback, task.task_path])
        for value in personal:
            assert value.lower() not in stored.lower(), (value, task.task_path)


def test_tasks_of_another_company_stay_in_theirs(company, members):
    other = make_company("Other Hiring")
    other_request, start, _ = _start(other, {Role.RECRUITER: other.memberships.get()})
    reference_request, _, _ = _start(company, members)
    mail.outbox.clear()
    run_due(day(start, 2))
    assert _reload(company, ReferenceRequest, reference_request.pk).candidate_reminders_sent == 1
    assert _reload(other, ReferenceRequest, other_request.pk).candidate_reminders_sent == 1
    with company_context(company):
        assert not ReferenceRequest.objects.filter(pk=other_request.pk).exists()


def test_daily_maintenance_is_planned_once_a_day_per_company(company, members):
    make_company("Second Hiring")
    now = timezone.now()
    assert jobs.plan_daily_maintenance(now=now) == 3  # two companies and the installation's
    assert jobs.plan_daily_maintenance(now=now) == 0
    assert len(queued("company_maintenance")) == 2
    assert jobs.plan_daily_maintenance(now=now + timedelta(days=1)) == 3


def test_daily_maintenance_is_a_safety_net_for_lost_tasks(company, members):
    """With every planned task lost, the daily run still expires overdue requests
    and sends a missed reminder, once."""
    overdue, start, _ = _start(company, members, deadline=timezone.now() + timedelta(days=1))
    waiting, _, _ = _start(company, members, email="sam@example.org", name="Sam Sample")
    DBTaskResult.objects.all().delete()
    mail.outbox.clear()
    with at(day(start, 2)):
        jobs.plan_daily_maintenance()
    ran = run_due(day(start, 2))
    [maintenance] = [task for task in ran if task.task_path.endswith("company_maintenance")]
    assert maintenance.return_value["expired"] == 1 and maintenance.return_value["reminders"] == 1
    assert _reload(company, ReferenceRequest, overdue.pk).status == RequestStatus.EXPIRED
    assert len(mails_to("sam@example.org", "Reminder")) == 1
    assert mails_to(CANDIDATE, "Reminder") == []
    assert jobs.maintain_company(company, now=day(start, 2, minutes=10)) == {
        "expired": 0,
        "reminders": 0,
        "digests": 0,
        "requests": 0,
        "references": 0,
        "candidates": 0,
        "files": 0,
        "mail_purged": 0,
        "mail_sent": 0,
    }


def test_maintenance_command_runs_everything_now(company, members, capsys):
    from vouch.cli import main

    overdue, start, _ = _start(company, members, deadline=timezone.now() + timedelta(days=1))
    old_link = links.issue(company, "candidate", overdue.pk, timezone.now() + timedelta(hours=1))
    links.revoke(links.resolve(old_link, "candidate"))
    with freeze_after(days=40):
        assert main(["references", "maintenance", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output[str(company.pk)]["expired"] == 1
    assert output["links"]["purged"] >= 1
    assert output["links"]["task_results"] == 0  # none finished yet
    assert _reload(company, ReferenceRequest, overdue.pk).status == RequestStatus.EXPIRED


def freeze_after(*, days: int):
    from freezegun import freeze_time

    return freeze_time(timezone.now() + timedelta(days=days), tick=True)


@pytest.fixture(autouse=True)
def _umask():
    # vouch.cli.main sets a 077 umask for the process; give the rest of the run its own back.
    import os

    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def test_two_workers_holding_the_same_request_send_one_reminder(company, members):
    """A task queued twice, or two workers picking up copies: both saw "not sent yet",
    the counter's compare-and-set lets only one send."""
    reference_request, start, _ = _start(company, members)
    mail.outbox.clear()
    with at(day(start, 2)), company_context(company):
        first_view = ReferenceRequest.objects.get(pk=reference_request.pk)
        second_view = ReferenceRequest.objects.get(pk=reference_request.pk)
        assert jobs.send_candidate_reminder(company, first_view) == "reminder 1 sent"
        assert jobs.send_candidate_reminder(company, second_view) == "already sent"
    assert len(mails_to(CANDIDATE, "Reminder")) == 1
    assert len(_timeline(company, reference_request, "candidate_reminded")) == 1


def test_a_referee_reminder_claim_waiting_on_another_sends_nothing(company, members):
    """Two workers with the same referee reminder, truly at once: the second's claim
    (a conditional UPDATE) reaches the row while the first's transaction holds it. When
    the first commits, the waiting claim must see the counter it set and send nothing.
    (On PostgreSQL, READ COMMITTED re-checks a waiting UPDATE's conditions on its own
    table only; a condition moved into a subquery would let the second through.)"""
    reference_request, start, _ = _start(company, members)
    rita, _ = _nominate_at(company, reference_request, start, REFEREES[0])
    due = day(start, 2)
    tried = threading.Event()
    outcome: dict[str, object] = {}

    def claim_later(stale: Reference) -> None:
        try:
            with company_context(company) as context:
                db = connections[context.alias]
                db.ensure_connection()
                if db.vendor == "sqlite":
                    # SQLite takes the write lock at the claim's BEGIN IMMEDIATE.
                    db.connection.set_trace_callback(lambda sql: sql.startswith(("BEGIN", "UPDATE")) and tried.set())
                outcome["second"] = jobs.send_referee_reminder(company, stale, now=due, replan=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome["error"] = exc
        finally:
            tenancy_connections.release_kept()

    mail.outbox.clear()
    with company_context(company) as context:
        first = Reference.objects.select_related("request").get(pk=rita.pk)
        second = Reference.objects.select_related("request").get(pk=rita.pk)
        with transaction.atomic(using=context.alias):
            assert jobs.send_referee_reminder(company, first, now=due, replan=False) == "reminder 1 sent"
            waiting = threading.Thread(target=claim_later, args=(second,), daemon=True)
            waiting.start()
            wait_until_blocked(context, tried, waiting)
        waiting.join(30)
    assert not waiting.is_alive()
    assert outcome == {"second": "already sent"}, outcome
    assert len(mails_to(RITA, "Reminder")) == 1
    assert _timeline(company, reference_request, "referee_reminded") == ["Reminder 1 sent to Rita Referee."]
    assert _reload(company, Reference, rita.pk).reminders_sent == 1


# --- the backend the settings choose ------------------------------------------------------

SERVICES = os.environ.get("VOUCH_TEST_SERVICES") == "1"
REDIS = os.environ.get("VOUCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = secrets.token_hex(40)


def _process_env(tmp_path, env: dict[str, str]) -> dict[str, str]:
    """A process environment with Vouch's real settings (not the tests') and ``env``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VOUCH_") and key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="vouch.settings",
        PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"),
        VOUCH_DATA_DIR=str(tmp_path),
        VOUCH_SECRET_KEY=SECRET_KEY,
        VOUCH_LOG_LEVEL="WARNING",
        **env,
    )
    return environment


def _in_a_process(tmp_path, code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` after django.setup() with Vouch's real settings and ``env``."""
    program = "import django, json\ndjango.setup()\nfrom django.conf import settings\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program], env=_process_env(tmp_path, env), capture_output=True, text=True, timeout=120
    )


BACKEND = "print(settings.TASKS['default']['BACKEND'])"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "django_tasks_db.DatabaseBackend"),
        ({"VOUCH_MODE": "production"}, "django_tasks_db.DatabaseBackend"),
        # Outside production a configured Redis does not move the queue (make run, tests).
        ({"VOUCH_REDIS_URL": REDIS}, "django_tasks_db.DatabaseBackend"),
        ({"VOUCH_MODE": "production", "VOUCH_REDIS_URL": REDIS}, "django_tasks_rq.RQBackend"),
        ({"VOUCH_TASKS_BACKEND": "redis", "VOUCH_REDIS_URL": REDIS}, "django_tasks_rq.RQBackend"),
        (
            {"VOUCH_MODE": "production", "VOUCH_REDIS_URL": REDIS, "VOUCH_TASKS_BACKEND": "database"},
            "django_tasks_db.DatabaseBackend",
        ),
    ],
)
def test_the_settings_choose_the_task_backend(tmp_path, env, expected):
    result = _in_a_process(tmp_path, BACKEND, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOUCH_TASKS_BACKEND": "redis"}, "VOUCH_TASKS_BACKEND=redis needs VOUCH_REDIS_URL"),
        ({"VOUCH_TASKS_BACKEND": "celery"}, "VOUCH_TASKS_BACKEND must be database or redis"),
    ],
)
def test_a_task_backend_that_cannot_work_stops_vouch_with_a_sentence(tmp_path, env, message):
    result = _in_a_process(tmp_path, BACKEND, **env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.skipif(not SERVICES, reason="needs Redis and PostgreSQL (VOUCH_TEST_SERVICES=1)")
def test_in_production_tasks_go_through_redis_and_vouch_worker_runs_them(tmp_path, db):
    """Production settings with Redis queue a task in RQ (ids only), schedule a later
    one in RQ's scheduled registry, and `vouch worker --batch` runs the due one."""
    import redis
    from django.conf import settings
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    database = settings.DATABASES["default"]
    control_url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"
    env = {"VOUCH_MODE": "production", "VOUCH_REDIS_URL": REDIS, "VOUCH_DATABASE_URL": control_url}
    # Production with Redis installs django_rq, whose migrations the test database (made
    # with the database task backend) lacks: `vouch migrate`, as each release runs it.
    migrate = subprocess.run(
        [sys.executable, "-m", "vouch.cli", "migrate"],
        env=_process_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    company_id, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    result = _in_a_process(
        tmp_path,
        f"""
        from datetime import timedelta
        from django.utils import timezone
        from vouch.references import jobs
        now_ = jobs.remind_candidate.enqueue("{company_id}", "{request_id}", 1)
        later = jobs.remind_candidate.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(
            "{company_id}", "{request_id}", 2
        )
        print(json.dumps([now_.id, later.id]))
        """,
        **env,
    )
    assert result.returncode == 0, result.stderr
    due_id, later_id = json.loads(result.stdout)
    connection = redis.Redis.from_url(REDIS)
    try:
        due, later = Job.fetch(due_id, connection=connection), Job.fetch(later_id, connection=connection)
        assert due.func_name == later.func_name == "vouch.references.jobs.remind_candidate"
        assert list(due.args) == [company_id, request_id, 1] and due.kwargs == {}
        assert later_id in ScheduledJobRegistry("default", connection=connection).get_job_ids()

        worker = subprocess.run(
            [sys.executable, "-m", "vouch.cli", "worker", "--batch", "--quiet"],
            env=_process_env(tmp_path, env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr
        due = Job.fetch(due_id, connection=connection)
        # The company does not exist (this test's data is not committed): the task finds
        # nothing to do, and says so.
        assert due.get_status() == "finished"
        assert due.return_value() == "company inactive"
        assert Job.fetch(later_id, connection=connection).get_status() == "scheduled"
    finally:
        for job_id in (due_id, later_id):
            ScheduledJobRegistry("default", connection=connection).remove(job_id)
            with contextlib.suppress(Exception):
                Job.fetch(job_id, connection=connection).delete()


@pytest.mark.server
def test_vouch_serve_runs_a_worker_that_runs_queued_tasks():
    """`make run` (vouch serve) runs the background worker: a task queued in the
    server's database is run, and stopping the server stops the worker too."""
    from tests.live import cleanup, make_server
    from tests.server.test_stop import _alive, _descendants, _wait_until

    server = make_server().start()
    try:
        workers = lambda: [  # noqa: E731
            pid for pid in _descendants(server.process.pid) if b"vouch.cli\x00worker" in _cmdline(pid)
        ]
        assert _wait_until(lambda: len(workers()) == 1, 30), server.log()
        enqueue = "from vouch.references import jobs; print(jobs.installation_maintenance.enqueue().id)"
        queued_id = _shell(server, enqueue)
        status = f"from django_tasks_db.models import DBTaskResult as T; print(T.objects.get(pk='{queued_id}').status)"
        assert _wait_until(lambda: _shell(server, status) == "SUCCESSFUL", 30), server.log()
        [worker] = workers()
    finally:
        cleanup(server)
    assert _wait_until(lambda: not _alive(worker), 10)


def _shell(server, code: str) -> str:
    """The last word ``code`` prints, run by `vouch manage shell` on the server's data."""
    return server.vouch("manage", "shell", "-v", "0", "-c", code).stdout.split()[-1]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_an_unreachable_queue_never_undoes_or_breaks_the_change(company, members, logs):
    """Planning runs after the change committed: a queue that cannot be reached is
    logged, the request stands and the candidate still gets their email."""
    from django.test import override_settings

    unreachable = {
        "TASKS": {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}},
        "RQ_QUEUES": {"default": {"URL": "redis://127.0.0.1:1/0", "SOCKET_TIMEOUT": 1}},
    }
    mail.outbox.clear()
    with override_settings(**unreachable):
        reference_request, start, _ = _start(company, members)
    assert _reload(company, ReferenceRequest, reference_request.pk).status == RequestStatus.AWAITING_CANDIDATE
    assert len(mails_to(CANDIDATE)) == 1
    assert queued("remind_candidate") == []
    assert "could not plan the tasks of request" in logs.getvalue()
    # The daily maintenance still sends the reminder when it falls due.
    assert jobs.maintain_company(company, now=day(start, 2))["reminders"] == 1


def test_reminders_say_where_things_stand(company, members):
    reference_request, start, _ = _start(company, members)
    rita, _ = _nominate_at(company, reference_request, start, REFEREES[0])
    with company_context(company):
        referee_flows.confirm_referee(rita, **IDENTITY)
        referee_flows.save_answers(rita, {})
    mail.outbox.clear()
    run_due(day(start, 2))
    [to_candidate] = mails_to(CANDIDATE, "Reminder")
    assert "1 more referee (1 of 2 nominated so far)" in to_candidate.body
    [to_rita] = mails_to(RITA, "Reminder")
    assert "Your saved answers are still there" in to_rita.body
    assert "Links from earlier emails still work too." in to_rita.body
    assert to_rita.alternatives and token_in(to_rita) in to_rita.alternatives[0][0]


def test_finished_task_results_are_pruned_after_30_days(company, members):
    reference_request, start, _ = _start(company, members)
    run_due(day(start, 2))
    finished = DBTaskResult.objects.exclude(status="READY").count()
    assert finished >= 1
    assert jobs.maintain_installation(now=day(start, 20))["task_results"] == 0
    assert jobs.maintain_installation(now=day(start, 33))["task_results"] == finished
    assert not DBTaskResult.objects.exclude(status="READY").exists()
    assert DBTaskResult.objects.filter(status="READY").exists()  # waiting tasks stay


def test_a_schedule_changed_later_moves_the_planned_reminders(company, members):
    reference_request, start, _ = _start(company, members)
    with company_context(company):
        settings = WorkflowSettings.current()
        settings.reminder_days = [3]
        settings.save()
    mail.outbox.clear()
    ran = run_due(day(start, 2))
    assert "not due yet" in {task.return_value for task in ran}
    assert mails_to(CANDIDATE) == []
    assert start + timedelta(days=3) in [task.run_after for task in queued("remind_candidate")]
    run_due(day(start, 3))
    assert len(mails_to(CANDIDATE, "Reminder")) == 1
    run_due(day(start, 8))  # the old plan's days 4 and 6 send nothing more
    assert len(mails_to(CANDIDATE, "Reminder")) == 1


class _RecordedStop(threading.Event):
    """The scheduler's stop event, recording how long each round waits; it stops the
    scheduler after ``rounds`` rounds."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds, self.waits = rounds, []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        if len(self.waits) >= self.rounds:
            self.set()
        return self.is_set()


def test_the_scheduler_looks_again_soon_while_the_database_is_away_and_says_so_once(monkeypatch, caplog):
    from django.db.utils import OperationalError

    failures = iter([True, True, True, True, False, False])

    def round_that_fails_while_the_database_is_away():
        if next(failures):
            raise OperationalError("connection refused")

    monkeypatch.setattr(jobs, "background_round", round_that_fails_while_the_database_is_away)
    monkeypatch.setattr(jobs, "plan_daily_maintenance", lambda: 0)
    stop = _RecordedStop(rounds=6)
    with caplog.at_level("WARNING", logger=jobs.log.name):
        jobs.run_scheduler(stop, interval=600, mail_interval=30)
    # Backing off from half a second, never longer than the cap, back to the round's
    # interval once the database answers.
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 30, 30]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("database is unavailable" in message for message in messages) == 1, messages
    assert sum("database is back" in message for message in messages) == 1, messages
