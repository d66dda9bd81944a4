"""API keys, the networks each key was used from, and the answers kept for idempotent
POSTs.

Company data: these live only in the company's database (``VOUCH_COMPANY_APPS``), so a
key's row sits with the data it opens, and a copy of the control database holds no key.
The secret itself is never stored: only its SHA-256 (see ``keys.services``). Addresses a
key was used from are personal data of whoever runs the calling system: encrypted, and
the networks kept as blind indexes."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from vouch.vault.fields import EncryptedCharField, EncryptedTextField


class ApiKey(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The visible part after the company id in the key's prefix (``vk_<company>_<public_id>``).
    public_id = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    # SHA-256 of the secret part: 32 bytes.
    secret_hash = models.BinaryField(max_length=32)
    scopes = models.JSONField(default=list)
    # CIDR strings; empty: any network.
    networks = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Control-plane user ids (no cross-database foreign key).
    created_by_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_id = models.BigIntegerField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = EncryptedCharField(max_length=45, blank=True, default="")
    use_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class ApiKeyNetwork(models.Model):
    """A network (IPv4 /24, IPv6 /64) a key has been used from: a call from one not in
    this list tells the owners (P17)."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="seen_networks")
    network_index = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "network_index"], name="api_key_network_unique")]

    def __str__(self) -> str:
        return f"A network of API key {self.key_id}"


class IdempotentCall(models.Model):
    """The first answer to a POST with an ``Idempotency-Key``, replayed for a retry of the
    same call for 24 hours (``vouch.api.idempotency``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SHA-256 of the header's value: the client chooses it, so it is not stored as given.
    key_hash = models.CharField(max_length=64, unique=True)
    # SHA-256 of method, path and body: a different call under the same key is refused.
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Null while the first call is still running.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True, default="")
    body = EncryptedTextField(blank=True, default="")

    def __str__(self) -> str:
        return f"Idempotent call {self.pk}"
