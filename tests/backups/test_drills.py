"""Restore drills: a set restored into scratch space and checked; a flipped byte fails the
drill and names the object; results are DrillRuns and security events; the daily sample;
health; the operators are emailed once per problem."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.accounts.helpers import fast_company
from tests.audit.conftest import committed_chain  # noqa: F401  (committed rows: the control snapshot)
from tests.backups.conftest import add_files, company_sql
from tests.references.helpers import add_candidate
from vouch.accounts.models import User
from vouch.audit import record
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.backups import alerts, drills
from vouch.backups.models import BackupSet, BackupStatus, DrillOutcome, DrillRun, Scope
from vouch.backups.sets import company_target, write_company_set, write_control_set
from vouch.cli import main
from vouch.objectstore import open_store

pytestmark = pytest.mark.django_db


def backed_up(name="Drilled Ltd"):
    company = fast_company(name)
    add_candidate(company, "Drill Person")
    add_files(company, {"attachments/cv.pdf": b"%PDF-1.4 " + b"y" * 100_000})
    row = write_company_set(company)
    assert row.status == BackupStatus.COMPLETE, row.error
    return company, row


def flip(company, row, number: int) -> None:
    path = open_store(company_target(company.region)).root / row.location / "objects" / str(number)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_drill_restores_and_checks_everything(backup_dir):
    company, row = backed_up()
    run = drills.drill_company(company)
    assert run.outcome == DrillOutcome.PASSED, run.problem
    assert set(run.checks) == {
        "restore",
        "integrity",
        "company_id",
        "schema",
        "row_counts",
        "encrypted_values",
        "files",
    }
    assert all(value.startswith("ok") for value in run.checks.values())
    assert "1 files" in run.checks["files"] and "0 values" not in run.checks["encrypted_values"]
    assert run.restore_seconds > 0 and run.backup_set_id == row.pk
    event = SecurityEvent.objects.get(action=EventAction.BACKUP_DRILL, company_id=company.pk)
    assert event.outcome == Outcome.SUCCESS
    assert not list((backup_dir.parent / "data" / "drills").iterdir())  # scratch removed


@pytest.mark.parametrize(
    ("number", "named"), [(0, "object 0 (the database)"), (1, "object 1 (file attachments/cv.pdf)")]
)
def test_a_flipped_byte_fails_the_drill_and_names_the_object(backup_dir, capsys, number, named):
    company, row = backed_up()
    flip(company, row, number)

    code = main(["backup", "drill", "--company", str(company.pk)])

    err = capsys.readouterr().err
    assert code == 1
    assert named in err
    run = DrillRun.objects.get(company_id=company.pk)
    assert run.outcome == DrillOutcome.FAILED and named in run.problem
    assert SecurityEvent.objects.get(action=EventAction.BACKUP_DRILL, company_id=company.pk).outcome == Outcome.FAILURE


def test_an_encrypted_value_that_does_not_open_fails_the_drill(backup_dir):
    company = fast_company("Tampered Inside")
    add_candidate(company, "Drill Person")
    [(pk, name)] = company_sql(company, "SELECT id, name FROM references_candidate")
    tampered = bytearray(name)
    tampered[-1] ^= 1
    company_sql(company, "UPDATE references_candidate SET name = %s WHERE id = %s", [bytes(tampered), pk])
    write_company_set(company)

    run = drills.drill_company(company)

    assert run.outcome == DrillOutcome.FAILED
    assert run.checks["encrypted_values"] == "failed"
    assert "references.candidate.name" in run.problem


def test_the_control_database_drill_verifies_the_security_log_to_the_manifest_head(committed_chain, backup_dir):  # noqa: F811
    fast_company("Some Co")
    for _ in range(3):
        record(EventAction.SYS_STARTUP)  # events in the log
    row = write_control_set()
    assert row.status == BackupStatus.COMPLETE, row.error
    run = drills.drill_control()
    assert run.outcome == DrillOutcome.PASSED, run.problem
    assert run.checks["chain"].startswith("ok (head")


def test_the_daily_sample_is_a_share_with_a_minimum_plus_schema_changes(settings, backup_dir):
    settings.VOUCH_DRILL_SAMPLE_PERCENT, settings.VOUCH_DRILL_SAMPLE_MIN = 5, 3
    companies = [fast_company(f"Sample {n}") for n in range(8)]
    changed = companies[0]
    now = timezone.now()
    for taken, version in ((now - timedelta(days=1), "10-aaaa"), (now, "11-bbbb")):
        BackupSet.objects.create(
            scope=Scope.COMPANY,
            company_id=changed.pk,
            taken_at=taken,
            status=BackupStatus.COMPLETE,
            schema_version=version,
        )
    for _ in range(5):
        chosen = drills.daily_sample(now)
        assert changed.pk in {c.pk for c in chosen}
        assert len(chosen) in (3, 4)  # the minimum, plus the changed one if not drawn


def test_health_says_off_ok_or_degraded(backup_dir):
    assert drills.health()["drills"]["state"] == "off"
    company, row = backed_up()
    assert drills.health()["drills"]["state"] == "ok"  # sets, but young: the first drill is due within a day
    BackupSet.objects.filter(pk=row.pk).update(taken_at=timezone.now() - timedelta(days=3))
    assert drills.health()["drills"]["state"] == "degraded"
    drills.drill_company(company)
    assert drills.health()["drills"]["state"] == "ok"
    flip(company, row, 0)
    drills.drill_company(company)
    state = drills.health()["drills"]
    assert state["state"] == "degraded" and "object 0" in state["detail"]


def test_a_failed_drill_emails_every_operator_once(backup_dir, mailoutbox):
    User.objects.create_operator("ops1@example.com")
    User.objects.create_operator("ops2@example.com")
    company, row = backed_up()
    flip(company, row, 1)

    drills.drill_company(company)
    assert alerts.check_and_alert() == 1

    [message] = mailoutbox
    assert sorted(message.to) == ["ops1@example.com", "ops2@example.com"]
    assert "restore drill failed" in message.subject
    assert str(company.pk) in message.body and "object 1" in message.body
    assert company.name not in message.body
    assert alerts.check_and_alert() == 0  # not every round
    assert len(mailoutbox) == 1


def test_a_backup_older_than_twice_its_schedule_emails_the_operators_once(settings, backup_dir, mailoutbox):
    settings.VOUCH_BACKUP_EVERY_MINUTES = 60
    User.objects.create_operator("ops@example.com")
    company, row = backed_up()
    assert alerts.check_and_alert() == 0
    BackupSet.objects.filter(pk=row.pk).update(taken_at=timezone.now() - timedelta(minutes=121))

    assert alerts.check_and_alert() == 1
    assert alerts.check_and_alert() == 0
    [message] = mailoutbox
    assert "backups are late" in message.subject and str(company.pk) in message.body


def test_a_failed_drill_stays_degraded_when_another_company_passes_later(backup_dir):
    bad, bad_row = backed_up("Bad Set Ltd")
    good, _ = backed_up("Good Set Ltd")
    flip(bad, bad_row, 0)
    drills.drill_company(bad)
    drills.drill_company(good)  # the newest drill passed, but the bad company's has not
    state = drills.health()["drills"]
    assert state["state"] == "degraded" and str(bad.pk) in state["detail"]
