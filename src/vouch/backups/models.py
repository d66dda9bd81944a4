"""What was backed up and drilled, where and when: control database.

The backup target is the truth about which sets exist (a restore after losing the
control database lists the target itself); these rows are the installation's record
of each attempt, for health, the operators' page and the company page."""

from __future__ import annotations

import uuid

from django.db import models


class Scope(models.TextChoices):
    COMPANY = "company", "Company"
    CONTROL = "control", "Control database"


class BackupStatus(models.TextChoices):
    PENDING = "pending", "Waiting for its target"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    PRUNED = "pruned", "Removed by retention"


class BackupSet(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    # Not a foreign key: the record outlives a purged company (and says it was purged).
    company_id = models.UUIDField(null=True, blank=True, db_index=True)
    region = models.CharField(max_length=16, blank=True)
    taken_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=BackupStatus.choices, default=BackupStatus.PENDING)
    # Where the set lives: the target's URL (no secrets) and the set's key prefix in it.
    target = models.CharField(max_length=500, blank=True)
    location = models.CharField(max_length=300, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    schema_version = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["scope", "company_id", "-taken_at"], name="backups_set_latest_idx")]

    def __str__(self) -> str:
        return f"{self.scope} {self.company_id or ''} {self.taken_at:%Y-%m-%d %H:%M} {self.status}"


class DrillOutcome(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class DrillRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    company_id = models.UUIDField(null=True, blank=True, db_index=True)
    region = models.CharField(max_length=16, blank=True)
    backup_set = models.ForeignKey(BackupSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="drills")
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=DrillOutcome.choices)
    restore_seconds = models.FloatField(default=0)
    # Each check's name and result ({"integrity": "ok", "row_counts": "ok", ...}).
    checks = models.JSONField(default=dict)
    problem = models.TextField(blank=True)
    # Taken by the daily schedule (vouch serve), not by hand: the schedule counts a day
    # from its own last drill, so a manual drill does not postpone the daily sample.
    scheduled = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["scope", "company_id", "-started_at"], name="backups_drill_latest_idx")]

    def __str__(self) -> str:
        return f"drill {self.scope} {self.company_id or ''} {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"
