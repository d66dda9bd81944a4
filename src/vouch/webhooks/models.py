"""Webhook endpoints and their deliveries.

Company data: it lives only in the company's database (``VOUCH_COMPANY_APPS``). An
endpoint's signing secrets are encrypted with the company's key (``vouch.vault``; the
primary key is a UUID because the ciphertext is bound to it). A delivery's payload is
thin by design (ids, types, statuses, links: see vouch.webhooks.events), so it is kept
as plain JSON."""

from __future__ import annotations

import uuid

from django.db import models

from vouch.vault.fields import EncryptedCharField


class Endpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    # Why it was switched off, when the system did it (410 Gone, failing for days).
    disabled_reason = models.CharField(max_length=200, blank=True)
    secret = EncryptedCharField(max_length=100)
    # During a rotation the old secret still signs, beside the new one, until then.
    previous_secret = EncryptedCharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # The first failure since the last success: failing for days disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event for one endpoint: sent until it succeeds or its window closes."""

    # The message id receivers see (``webhook-id``: msg_ and this in hex), the same on
    # every attempt and replay, so a receiver can drop repeats.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    # Orders the deliveries of one transaction (created in the same microsecond on a fast machine).
    sequence = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    # Retries stop WINDOW after this (the event's time, or a manual replay's).
    window_started_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A sender holds the row until then; a claim that lapsed is a dead sender's.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-sequence"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_delivery_log"),
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"

    @property
    def message_id(self) -> str:
        return f"msg_{self.id.hex}"
