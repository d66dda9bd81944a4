"""Support grants: an operator's time-limited, owner-approved access to one company (P15).
Control database: the grant is about the company, not part of its data."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

# The longest an owner can let an operator in for, and the longest reason an operator may give.
MAX_HOURS = 72
REASON_MAX = 500


class Status(models.TextChoices):
    PENDING = "pending", "Waiting for an owner"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"


class Scope(models.TextChoices):
    READ = "read", "Read-only"
    READ_WRITE = "read_write", "Read and write"


class SupportGrant(models.Model):
    """One request by an operator to see one company, and what its owners decided.

    "Expired" is not a status: a grant is live only while ``expires_at`` is ahead, checked
    on every request (``is_live``). ``ended_recorded_at`` says the end (revocation or
    expiry) has been recorded and announced, so that happens once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey("tenancy.Company", on_delete=models.CASCADE, related_name="support_grants")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_grants")
    reason = models.CharField(max_length=REASON_MAX)
    requested_hours = models.PositiveSmallIntegerField()
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    ended_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["company", "-requested_at"]), models.Index(fields=["operator", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="approved") | models.Q(expires_at__isnull=False, starts_at__isnull=False),
                name="support_grant_approved_has_window",
            ),
            models.CheckConstraint(
                condition=models.Q(requested_hours__gte=1, requested_hours__lte=MAX_HOURS),
                name="support_grant_requested_hours_range",
            ),
        ]

    def __str__(self) -> str:
        return f"support grant {self.pk} ({self.status})"

    def is_live(self, now: datetime | None = None) -> bool:
        """Approved, not revoked, and within its time: checked on every request."""
        now = now or timezone.now()
        return (
            self.status == Status.APPROVED
            and self.starts_at is not None
            and self.expires_at is not None
            and self.starts_at <= now < self.expires_at
        )

    def is_expired(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.status == Status.APPROVED and self.expires_at is not None and self.expires_at <= now

    def state_label(self, now: datetime | None = None) -> str:
        if self.is_expired(now):
            return "Expired"
        return self.get_status_display()

    @property
    def read_only(self) -> bool:
        return self.scope != Scope.READ_WRITE
