"""What the abuse rules keep in the control database: a company's own thresholds, and
the accounts that must re-authenticate (counts live in the cache, ``monitor``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RuleThreshold(models.Model):
    """A company's threshold for one rule, where it differs from the default."""

    company = models.ForeignKey("tenancy.Company", on_delete=models.CASCADE, related_name="+")
    rule = models.CharField(max_length=32)
    threshold = models.PositiveIntegerField()
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "rule"], name="abuse_threshold_unique")]

    def __str__(self) -> str:
        return f"{self.rule}: {self.threshold}"


class ReauthDemand(models.Model):
    """Every session of ``user`` must confirm the password (or a 2FA method) after
    ``since`` before its next sensitive action. Kept in the database, not the cache: a
    flushed cache must not lift it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField()
    rule = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"re-authentication of user {self.user_id} since {self.since:%Y-%m-%d %H:%M}"
