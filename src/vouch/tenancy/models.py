"""Companies: the tenants of Vouch. Lives in the control database."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class CompanyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    # The owner asked for deletion; the company works as before until ``delete_after``
    # and an owner can still cancel.
    DELETION_SCHEDULED = "deletion_scheduled", "Deletion scheduled"
    # A tombstone: database and files are gone (or being removed, while ``deleted_at``
    # is still empty), only the row and the company's security events remain.
    DELETED = "deleted", "Deleted"


# What a tombstone is called. The real name can identify a customer (and through it
# the people it checked), so it goes with the rest of the company's data.
TOMBSTONE_NAME = "Deleted company"


class Company(models.Model):
    """A customer of Vouch. Its region is chosen at signup and never changed by members."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    region = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    # False: nobody may use the company (always so once deleted; the constraint below).
    # Membership checks filter on it, so a deleted company drops out of them even
    # before its memberships are removed.
    is_active = models.BooleanField(default=True)
    status = models.CharField(max_length=24, choices=CompanyStatus.choices, default=CompanyStatus.ACTIVE)
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    delete_after = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Set while the company is offline for maintenance (an in-place restore): its members
    # and its links get a maintenance page, and no code opens its database
    # (core.context.company_context refuses). Kept in the database so it survives a
    # crash mid-restore: the company stays offline until the restore is finished or
    # rolled back, and ``offline_reason`` says how.
    offline_since = models.DateTimeField(null=True, blank=True)
    offline_reason = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status=CompanyStatus.DELETED) | models.Q(is_active=False),
                name="company_deleted_is_inactive",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=CompanyStatus.DELETION_SCHEDULED) | models.Q(delete_after__isnull=False),
                name="company_scheduled_has_date",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def deletion_scheduled(self) -> bool:
        return self.status == CompanyStatus.DELETION_SCHEDULED

    @property
    def is_offline(self) -> bool:
        return self.offline_since is not None

    @property
    def is_deleted(self) -> bool:
        return self.status == CompanyStatus.DELETED
