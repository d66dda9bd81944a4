"""Account mail waiting to be sent (vouch.outbox.queue), in the control database."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class QueuedMail(models.Model):
    """One account email (a sign-in alert, a password reset, an invitation, an operator's
    alert), saved with the change that causes it and sent after it commits; kept until
    sent, retried when the mail server is away. The message is sealed with the outbox key:
    it holds addresses, names and live links (a reset link)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    # The company the mail is about ("" for none): purged with the company.
    company = models.CharField(max_length=64, blank=True, db_index=True)
    sealed = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    # The failure's kind only (an exception's class and the server's reply code): never the
    # message, whose text holds personal data.
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["sent_at", "gave_up_at", "next_attempt_at"], name="outbox_queue_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"
