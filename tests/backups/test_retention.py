"""Retention: every set for 48 hours, the newest of each day for 35 days, of each month
for 12 months (settings), decided at an injected ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.accounts.helpers import fast_company
from vouch.backups.models import BackupSet, BackupStatus
from vouch.backups.sets import company_prefix, company_target, list_sets, retention, write_company_set
from vouch.backups.sets.retention import Policy, to_keep
from vouch.objectstore import open_store

NOW = datetime(2025, 6, 15, 12, 30, tzinfo=UTC)
DEFAULT = Policy(hourly_hours=48, daily_days=35, monthly_months=12)


def test_hourly_then_daily_then_monthly():
    hourly = [NOW - timedelta(hours=h) for h in range(24 * 800)]
    keep = to_keep(hourly, NOW, DEFAULT)

    # Every set of the last 48 hours.
    assert all(t in keep for t in hourly if t >= NOW - timedelta(hours=48))
    # Beyond: only the newest of each day (23:30 UTC) for 35 days...
    daily = {t for t in keep if NOW - timedelta(days=35) <= t < NOW - timedelta(hours=48)}
    assert daily and all(t.hour == 23 for t in daily)
    assert len({t.date() for t in daily}) == len(daily)
    assert NOW - timedelta(days=3, hours=1) not in keep  # 11:30 three days ago: not a day's newest
    # ...then the newest of each month, 12 months back (this one included).
    older = sorted(t for t in keep if t < NOW - timedelta(days=35))
    assert [(t.year, t.month) for t in older] == [(2024, m) for m in range(7, 13)] + [(2025, m) for m in (1, 2, 3, 4)]
    assert all((t + timedelta(hours=1)).day == 1 for t in older)  # each month's last set
    assert min(keep) >= datetime(2024, 7, 1, tzinfo=UTC)
    assert len(keep) == 49 + 33 + 10


def test_the_newest_set_is_kept_however_old_and_future_sets_are_kept():
    old = [NOW - timedelta(days=900), NOW - timedelta(days=800)]
    assert to_keep(old, NOW, DEFAULT) == {NOW - timedelta(days=800)}
    future = NOW + timedelta(days=3)
    assert future in to_keep([*old, future], NOW, DEFAULT)


def test_settings_change_the_policy(settings):
    settings.VOUCH_BACKUP_KEEP_HOURLY_HOURS = 1
    settings.VOUCH_BACKUP_KEEP_DAILY_DAYS = 0
    settings.VOUCH_BACKUP_KEEP_MONTHLY_MONTHS = 0
    times = [NOW - timedelta(minutes=m) for m in (0, 30, 90, 600)]
    assert to_keep(times, NOW, Policy.from_settings()) == {NOW, NOW - timedelta(minutes=30)}


@pytest.mark.django_db
def test_pruning_removes_sets_from_the_target(backup_dir):
    company = fast_company()
    times = [NOW - timedelta(hours=1), NOW - timedelta(days=3, hours=2), NOW - timedelta(days=3, hours=1)]
    times += [NOW - timedelta(days=100), NOW - timedelta(days=400)]
    rows = {t: write_company_set(company, now=t) for t in times}
    store = open_store(company_target(company.region))
    # An upload that never finished, two days ago: incomplete, and cleaned.
    abandoned = write_company_set(company, now=NOW - timedelta(days=2))
    store.delete(f"{abandoned.location}/manifest")

    removed = retention.prune(store, company_prefix(company.pk), NOW, policy=DEFAULT)

    assert {info.set_id for info in removed} == {
        rows[NOW - timedelta(days=3, hours=2)].pk,  # not the newest of its day
        rows[NOW - timedelta(days=400)].pk,  # beyond 12 months
        abandoned.pk,
    }
    left = {info.set_id for info in list_sets(store, company_prefix(company.pk))}
    assert left == {rows[t].pk for t in times} - {info.set_id for info in removed}
    assert not any(abandoned.location in info.key for info in store.list(""))


@pytest.mark.django_db
def test_a_round_prunes_and_marks_the_records(backup_dir):
    from vouch.backups.sets import schedule

    company = fast_company()
    old = write_company_set(company, now=NOW - timedelta(days=500))
    schedule.run_round(now=NOW, control=False)
    assert not open_store(company_target(company.region)).exists(f"{old.location}/manifest")
    # Its record says so (and records of pruned sets go after a while).
    assert not BackupSet.objects.filter(pk=old.pk).exclude(status=BackupStatus.PRUNED).exists()
    assert BackupSet.objects.filter(company_id=company.pk, status=BackupStatus.COMPLETE).count() == 1
