"""The company's own activity log: who did what in the company.

Company data: it lives only in the company's database (``VOUCH_COMPANY_APPS``).
People are referred to by their control-plane user id (no cross-database foreign
key) and by the name they had at the time. Names, summaries and details can hold
personal data, so they are encrypted with the company's key (``vouch.vault``); the
primary key is a UUID because the ciphertext is bound to it."""

from __future__ import annotations

import uuid

from django.db import models

from vouch.vault.fields import EncryptedCharField, EncryptedJSONField


class Entry(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_id = models.BigIntegerField(null=True)
    actor_name = EncryptedCharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    summary = EncryptedCharField(max_length=300)
    details = EncryptedJSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]  # the id only makes the order total, for stable pages
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.summary
