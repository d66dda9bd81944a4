"""``/operator/backups/``: per region, the last backup's age, the mirror, the last drill.

Operators only (P15: installation health, never a company's personal data): ids,
times, states and check names, no company names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from vouch import regions
from vouch.accounts import policy
from vouch.backups import alerts, health
from vouch.backups.models import BackupSet, BackupStatus, DrillRun, Scope
from vouch.tenancy.models import Company, CompanyStatus


@dataclass
class Row:
    name: str
    code: str
    companies: int
    last_backup: datetime | None
    late: int  # companies whose last backup is older than twice the schedule
    mirror: dict
    last_drill: DrillRun | None

    @property
    def backup_age(self):
        return timezone.now() - self.last_backup if self.last_backup else None


def _rows() -> list[Row]:
    live = Company.objects.exclude(status=CompanyStatus.DELETED)
    counts = dict(live.values_list("region").annotate(n=Count("pk")).order_by())
    complete = BackupSet.objects.filter(status=BackupStatus.COMPLETE, scope=Scope.COMPANY)
    last_by_company = dict(complete.values_list("company_id").annotate(last=Max("taken_at")).order_by())
    limit = timezone.now() - alerts.stale_after()
    data_safety = health.report()
    rows = []
    for name in settings.VOUCH_REGIONS:
        region = regions.get(name)
        ids = set(live.filter(region=name).values_list("pk", flat=True))
        times = [last_by_company[i] for i in ids if i in last_by_company]
        late = sum(1 for i in ids if last_by_company.get(i) is None or last_by_company[i] < limit)
        mirror = data_safety.get("replication" if region.uses_postgresql else "mirror", {"state": "off", "detail": ""})
        drill = DrillRun.objects.filter(scope=Scope.COMPANY, region=name).order_by("-started_at").first()
        rows.append(Row(regions.label(name), name, counts.get(name, 0), max(times, default=None), late, mirror, drill))
    control_last = BackupSet.objects.filter(status=BackupStatus.COMPLETE, scope=Scope.CONTROL).aggregate(
        m=Max("taken_at")
    )["m"]
    control_drill = DrillRun.objects.filter(scope=Scope.CONTROL).order_by("-started_at").first()
    rows.append(
        Row(
            "Control database",
            "control",
            0,
            control_last,
            int(control_last is None or control_last < limit),
            data_safety.get("mirror", {"state": "off", "detail": ""}),
            control_drill,
        )
    )
    return rows


@login_required
def operator_backups(request: HttpRequest) -> HttpResponse:
    policy.require(request.user.is_staff)
    any_backup = BackupSet.objects.exists() or DrillRun.objects.exists()
    return render(
        request,
        "backups/operator.html",
        {
            "rows": _rows() if any_backup else [],
            "schedule_minutes": settings.VOUCH_BACKUP_EVERY_MINUTES,
            "data_safety": health.report(),
        },
    )


def company_summary(company_id) -> dict:
    """The company page's lines for owners: its last backup and its last drill."""
    last_backup = (
        BackupSet.objects.filter(scope=Scope.COMPANY, company_id=company_id, status=BackupStatus.COMPLETE)
        .order_by("-taken_at")
        .first()
    )
    last_drill = DrillRun.objects.filter(scope=Scope.COMPANY, company_id=company_id).order_by("-started_at").first()
    return {"last_backup": last_backup, "last_drill": last_drill}
