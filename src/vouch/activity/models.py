"""The company's own activity log: who did what in the company.

Company data: it lives only in the company's database (``VOUCH_COMPANY_APPS``).
People are referred to by their control-plane user id (no cross-database foreign
key) and by the name they had at the time."""

from __future__ import annotations

from django.db import models


class Entry(models.Model):
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_id = models.BigIntegerField(null=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.summary
