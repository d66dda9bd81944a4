"""Workflow mail under faults, with real processes: `vouch worker` killed with SIGKILL
between a reminder's commit and its sending, between the sending and its marking, and
at random moments. Every reminder reaches the local outbox exactly once.

The kill lands exactly where wanted through a test-only pause point
(``VOUCH_TEST_PAUSE_AT``, see ``vouch.references.faults``): the worker waits there
while a file exists and says so with another; the test kills it then."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = """
from datetime import timedelta
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from vouch.accounts.models import User
from vouch.references import jobs, workflow
from vouch.references.models import ReferenceRequest
from vouch.core.context import company_context
from vouch.tenancy.models import Company
from vouch.tenancy.services import create_company

company = Company.objects.first()
if company is None:
    company = create_company("Faults Ltd", "eu", User.objects.create_user("owner@example.com", "p" * 20))
owner = User.objects.get(email="owner@example.com")
ids = []
with company_context(company):
    for n in range({count}):
        request = workflow.create_request(
            actor=owner, name=f"Candidate {{n}}", email=f"{prefix}{{n}}@example.org", role="Analyst",
            questionnaire="builtin:general-professional", deadline=timezone.now() + timedelta(days=14),
        )
        ids.append(request.pk)
    # Created three days ago: the first reminder (day 2) is due.
    ReferenceRequest.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(days=3))
DBTaskResult.objects.all().delete()
for request_id in ids:
    jobs.remind_candidate.enqueue(str(company.pk), str(request_id), 1)
print(json.dumps(str(company.pk)))
"""
STATE = """
from django_tasks_db.models import DBTaskResult
from vouch.outbox import store
from vouch.references.models import OutgoingMail
from vouch.core.context import company_context
from vouch.tenancy.models import Company

reminders = {{}}
for message in store.list_messages():
    if message.subject.startswith("[Vouch] Reminder") and message.to.startswith("{prefix}"):
        reminders[message.to] = reminders.get(message.to, 0) + 1
with company_context(Company.objects.get()):
    unsent = OutgoingMail.objects.filter(sent_at__isnull=True, kind="candidate_reminder").count()
tasks = {{}}
for task in DBTaskResult.objects.filter(task_path__endswith="remind_candidate"):
    tasks[task.status] = tasks.get(task.status, 0) + 1
print(json.dumps({{"reminders": reminders, "unsent": unsent, "tasks": tasks}}))
"""


class Installation:
    """A data directory of its own (SQLite, local outbox) and the commands run on it."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="vouch-mailq-"))
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("VOUCH_")}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.update(
            DJANGO_SETTINGS_MODULE="vouch.settings",
            PYTHONPATH=str(ROOT / "src"),
            VOUCH_DATA_DIR=str(self.data_dir),
            VOUCH_LOG_LEVEL="WARNING",
        )
        self.workers: list[subprocess.Popen] = []

    def python(self, code: str):
        program = "import django, json\ndjango.setup()\n" + textwrap.dedent(code)
        result = subprocess.run(
            [sys.executable, "-c", program], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def worker(self, *args: str, **env: str) -> subprocess.Popen:
        log = (self.data_dir / "worker.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "vouch.cli", "worker", "--quiet", *args],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def finish(self, prefix: str, deadline: float = 40) -> dict:
        """Run `vouch worker --batch` (claims taken over at once: every earlier worker
        is dead) until every reminder task finished and its mail went; the state then."""
        end = time.monotonic() + deadline
        while True:
            batch = self.worker("--batch", VOUCH_WORK_LEASE_SECONDS="0")
            assert batch.wait(timeout=60) == 0, self.log()
            state = self.python(STATE.format(prefix=prefix))
            if state["unsent"] == 0 and set(state["tasks"]) == {"SUCCESSFUL"}:
                return state
            assert time.monotonic() < end, (state, self.log())

    def _count(self, where: str, *params) -> int:
        """Read the task queue directly (SQLite, read only): cheaper than a process."""
        uri = f"file:{self.data_dir / 'control.sqlite3'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            query = f"SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE {where}"  # noqa: S608 - ours
            return connection.execute(query, params).fetchone()[0]

    def tasks_done(self) -> int:
        return self._count("status = 'SUCCESSFUL'")

    def log(self) -> str:
        path = self.data_dir / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def installation():
    place = Installation()
    try:
        setup = subprocess.run(
            [sys.executable, "-m", "vouch.cli", "setup"], env=place.env, capture_output=True, text=True, timeout=120
        )
        assert setup.returncode == 0, setup.stderr
        yield place
    finally:
        place.close()


def _kill_at(installation: Installation, point: str) -> None:
    """Start a worker that stops at ``point``; SIGKILL it there."""
    flag = installation.data_dir / f"pause-{point}"
    flag.touch()
    reached = Path(f"{flag}.reached")
    worker = installation.worker("--batch", VOUCH_TEST_PAUSE_AT=point, VOUCH_TEST_PAUSE_FILE=str(flag))
    end = time.monotonic() + 60
    while not reached.exists():
        assert worker.poll() is None, f"the worker ended before {point}:\n{installation.log()}"
        assert time.monotonic() < end, installation.log()
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    flag.unlink()
    reached.unlink()


@pytest.mark.parametrize("point", ["after_commit", "after_mail_sent"])
def test_a_worker_killed_around_sending_a_reminder_loses_it_not_and_sends_it_once(installation, point):
    """Killed after the reminder's counter committed but before its mail went (the
    mail is saved with it), or after the mail went but before it was marked sent (the
    repeat is the same message, kept once): after a restart the candidate has exactly
    one reminder, and the task left running by the dead worker is run again."""
    prefix = f"kill-{point.replace('_', '-')}-"
    installation.python(SETUP.format(count=1, prefix=prefix))
    _kill_at(installation, point)
    killed = installation.python(STATE.format(prefix=prefix))
    assert killed["tasks"] == {"RUNNING": 1}  # left running for good by the dead worker
    assert killed["unsent"] == 1
    assert sum(killed["reminders"].values()) == (1 if point == "after_mail_sent" else 0)

    state = installation.finish(prefix)
    assert state["reminders"] == {f"{prefix}0@example.org": 1}


def test_workers_killed_at_random_moments_lose_no_reminder_and_send_none_twice(installation):
    """Thirty reminders due; workers killed at random moments of their work, four
    times, then one left to finish: every candidate has exactly one reminder."""
    prefix, count = "random-", 30
    installation.python(SETUP.format(count=count, prefix=prefix))
    chance = random.Random()
    # Kill points spread over the work whatever the machine's speed: once the queue has
    # ``target`` reminders done, a random moment later.
    for target in sorted(chance.sample(range(1, count - 10), 4)):
        worker = installation.worker("--interval", "0.05", VOUCH_WORK_LEASE_SECONDS="1")
        end = time.monotonic() + 60
        while installation.tasks_done() < target:
            assert worker.poll() is None and time.monotonic() < end, installation.log()
            time.sleep(0.01)
        time.sleep(chance.uniform(0, 0.02))  # the random kill point, not a wait for a result
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed = installation.python(STATE.format(prefix=prefix))
    print("after the kills:", killed)  # how far the killed workers got, for the record
    assert killed["tasks"].get("SUCCESSFUL", 0) < count  # the kills did interrupt the work
    state = installation.finish(prefix)
    assert state["reminders"] == {f"{prefix}{n}@example.org": 1 for n in range(count)}, installation.log()
