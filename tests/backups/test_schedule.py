"""Backup rounds: a target that is down (pending, degraded, nothing lost), purged
companies' sets removed, health, the schedule thread and the commands."""

from __future__ import annotations

import argparse
import io
import os
import stat
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files, point_targets
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.backups.models import BackupSet, BackupStatus, Scope
from vouch.backups.sets import (
    company_prefix,
    company_target,
    control_target,
    latest_set,
    list_sets,
    open_set,
    schedule,
    write_company_set,
)
from vouch.backups.sets.cli import cli_list, cli_run
from vouch.backups.sets.writer import spool_dir, spool_root
from vouch.objectstore import open_store
from vouch.tenancy import deletion


def test_a_target_that_is_down_keeps_sets_pending_and_loses_nothing(
    committed_chain, settings, tmp_path, s3_server, s3_bucket
):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    point_targets(settings, s3_server.url(s3_bucket, "backups"))
    companies = [fast_company(region="eu"), fast_company(region="us")]
    add_files(companies[0], {"attachments/a.pdf": b"a" * 70_000})

    s3_server.stop()
    try:
        result = schedule.run_round()
        assert len(result.pending) == 3 and not result.complete  # two companies and control
        assert result.down  # each target named once
        rows = list(BackupSet.objects.filter(status=BackupStatus.PENDING))
        assert len(rows) == 3 and all("target unavailable" in row.error for row in rows)
        # Kept, encrypted, in a private spool.
        assert stat.S_IMODE(os.stat(spool_root()).st_mode) == 0o700
        for row in rows:
            assert (spool_dir(row.pk) / "manifest").exists()
            assert all(b"SQLite format" not in p.read_bytes() for p in spool_dir(row.pk).rglob("*") if p.is_file())
        health = schedule.health()["backups"]
        assert health["state"] == "degraded" and "waiting for an unreachable target" in health["detail"]
        # A second round while still down: one pending set per company, the newest.
        again = schedule.run_round()
        assert len(again.pending) == 3
        assert BackupSet.objects.filter(status=BackupStatus.PENDING).count() == 3
        superseded = BackupSet.objects.filter(pk__in=[r.pk for r in rows])
        assert all(r.status == BackupStatus.FAILED and "superseded" in r.error for r in superseded)
        assert all(not spool_dir(r.pk).exists() for r in superseded)
        event = SecurityEvent.objects.filter(action=EventAction.BACKUP_TAKEN).order_by("-seq").first()
        assert event.outcome == Outcome.FAILURE and event.details["pending"] == 3
    finally:
        s3_server.start()

    retried = schedule.RoundResult()
    schedule.retry_pending(retried)
    assert len(retried.complete) == 3 and not retried.pending
    assert not BackupSet.objects.filter(status=BackupStatus.PENDING).exists()
    assert schedule.health()["backups"]["state"] == "ok"
    for company in companies:
        store = open_store(company_target(company.region))
        info = latest_set(store, company_prefix(company.pk))
        open_set(store, info.location, region=company.region).verify()
    store = open_store(control_target())
    open_set(store, latest_set(store, "control/").location).verify()
    assert not any(spool_root().glob("*-*"))  # spools emptied once uploaded


@pytest.mark.django_db
def test_a_purged_companys_sets_are_removed_from_its_target(backup_dir, settings):
    company = fast_company()
    kept = fast_company(region=company.region)
    write_company_set(company)
    write_company_set(kept)
    store = open_store(company_target(company.region))
    deletion.schedule_deletion(company, company.memberships.first(), now=timezone.now() - timedelta(days=60))
    deletion.purge_due()

    # The target is reached the next round; until then (or while it is down) the records say so.
    config = settings.VOUCH_REGION_CONFIG
    nowhere = "s3://backups?endpoint=http://127.0.0.1:9"  # nothing listens there: unavailable
    settings.VOUCH_REGION_CONFIG = config | {company.region: config[company.region] | {"backup_url": nowhere}}
    assert schedule.remove_purged_companies() == []
    assert "removing its sets failed" in BackupSet.objects.get(company_id=company.pk).error
    settings.VOUCH_REGION_CONFIG = config
    assert schedule.remove_purged_companies() == [company.pk]

    assert list_sets(store, company_prefix(company.pk)) == []
    assert not [i for i in store.list("") if str(company.pk) in i.key]
    assert len(list_sets(store, company_prefix(kept.pk))) == 1
    assert BackupSet.objects.get(company_id=company.pk).status == BackupStatus.PRUNED
    assert SecurityEvent.objects.filter(action=EventAction.BACKUP_REMOVED, company_id=company.pk).exists()
    assert schedule.remove_purged_companies() == []  # done once


@pytest.mark.django_db
def test_health_says_degraded_when_the_last_backup_is_older_than_twice_the_schedule(backup_dir, settings):
    settings.VOUCH_BACKUP_EVERY_MINUTES = 60
    now = timezone.now()
    assert schedule.health(now)["backups"]["state"] == "ok"  # nothing to back up yet
    company = fast_company()
    write_company_set(company, now=now)
    BackupSet.objects.create(scope=Scope.CONTROL, taken_at=now, status=BackupStatus.COMPLETE)
    assert schedule.health(now + timedelta(minutes=119))["backups"]["state"] == "ok"
    later = schedule.health(now + timedelta(minutes=121))["backups"]
    assert later["state"] == "degraded"
    assert "the control database and 1 company" in later["detail"]
    settings.VOUCH_BACKUP_EVERY_MINUTES = 0
    assert schedule.health(now)["backups"]["state"] == "off"


@pytest.mark.django_db
def test_health_is_shown_on_healthz(client, backup_dir):
    BackupSet.objects.create(
        scope=Scope.CONTROL,
        taken_at=timezone.now(),
        status=BackupStatus.PENDING,
        error="target s3://private-bucket unreachable",
    )
    body = client.get("/healthz").json()
    assert body["data_safety"]["backups"] == "degraded"
    assert body["status"] == "degraded"
    # The public page gives the state, not the error behind it.
    page = client.get("/healthz").content.decode()
    assert "unreachable target" not in page and "private-bucket" not in page  # the detail stays private


def test_serve_thread_takes_a_round_when_due_and_stops(committed_chain, backup_dir, settings):
    company = fast_company()
    stopping = threading.Event()
    errors = []

    def run():
        try:
            schedule.backup_periodically(stopping)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = BackupSet.objects.filter(status=BackupStatus.COMPLETE)
            if done.filter(scope=Scope.CONTROL).exists() and done.filter(company_id=company.pk).exists():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the schedule took no round")
    finally:
        stopping.set()
        thread.join(30)
    assert not thread.is_alive() and not errors
    # Not due again: a restart does not take another round at once.
    assert not schedule.due(timezone.now())


def args(**values) -> argparse.Namespace:
    return argparse.Namespace(**({"company": None, "control": False, "progress": False} | values))


@pytest.mark.django_db
def test_backup_run_and_list_for_one_company(backup_dir):
    company = fast_company("Listed Ltd")
    out, err = io.StringIO(), io.StringIO()
    assert cli_run(args(company="Listed Ltd"), out, err) == 0, err.getvalue()
    assert "1 set(s) complete" in out.getvalue()
    out = io.StringIO()
    assert cli_list(args(company=str(company.pk)), out, err) == 0
    [row] = BackupSet.objects.filter(company_id=company.pk)
    assert str(row.pk) in out.getvalue() and "complete" in out.getvalue()


@pytest.mark.django_db
def test_backup_commands_refuse_an_unknown_company_with_exit_2(backup_dir):
    err = io.StringIO()
    assert cli_run(args(company="No Such Company"), io.StringIO(), err) == 2
    assert "no company with id or name" in err.getvalue()
    assert cli_list(args(company="No Such Company"), io.StringIO(), io.StringIO()) == 2
