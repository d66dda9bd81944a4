"""Account protection state, in the control database.

Brute-force counters that must outlive a cache flush, known devices, the sign-in
history the risk engine compares against, account suspension, and each company's
security settings."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AccountState(models.Model):
    """Protection state of one account. Created on first need."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guard_state")
    # Consecutive failed password checks since the last success (NIST SP 800-63B: at most 100).
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Set when the failure cap is reached: password sign-in refused until reset by email.
    password_disabled_at = models.DateTimeField(null=True, blank=True)
    # Until when password guesses at the account are held (the throttle's clock, epoch
    # seconds): the cache holds the same, this is its floor when Redis has lost its data
    # (vouch.guard.throttle.decide).
    held_until = models.FloatField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=200, blank=True)
    # A suspension lifted by a password reset that still waits for an admin's approval.
    awaiting_approval = models.BooleanField(default=False)
    # SHA-256 of the nonce in the latest emailed unlock link (vouch.guard.unlock): the link
    # works once, and only while it is the latest one. Empty: no link outstanding.
    unlock_nonce_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"protection state of user {self.user_id}"

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class KnownDevice(models.Model):
    """A browser that has signed in to this account before (signed device cookie)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_devices")
    # SHA-256 of the random device id in the cookie; the id itself is never stored.
    device_hash = models.CharField(max_length=64)
    user_agent_family = models.CharField(max_length=64, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "device_hash"], name="guard_device_once_per_user")]

    def __str__(self) -> str:
        return f"device of user {self.user_id} ({self.user_agent_family or 'unknown browser'})"


class SignIn(models.Model):
    """One successful password check and what the risk engine made of it."""

    class Decision(models.TextChoices):
        ALLOW = "allow"
        NOTIFY = "notify"
        STEP_UP = "step_up"
        SUSPEND = "suspend"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_ins")
    occurred_at = models.DateTimeField(db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True)
    asn = models.CharField(max_length=32, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    device_hash = models.CharField(max_length=64, blank=True)
    user_agent_family = models.CharField(max_length=64, blank=True)
    score = models.PositiveSmallIntegerField(default=0)
    signals = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.ALLOW)
    # When the sign-in went all the way through (after any step-up); only completed
    # sign-ins are the account's history for the risk engine.
    completed_at = models.DateTimeField(null=True, blank=True)
    # When its "this wasn't me" link was used (the link works once).
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["user", "-occurred_at"])]

    def __str__(self) -> str:
        return f"sign-in of user {self.user_id} at {self.occurred_at:%Y-%m-%d %H:%M} ({self.decision})"


class CompanySecuritySettings(models.Model):
    """What a company's owners set for all its members (P19)."""

    company = models.OneToOneField("tenancy.Company", on_delete=models.CASCADE, related_name="security")
    require_2fa = models.BooleanField(default=False)
    require_2fa_since = models.DateTimeField(null=True, blank=True)
    require_2fa_grace_days = models.PositiveSmallIntegerField(default=7)
    # None: the installation's defaults (VOUCH_SESSION_IDLE_MINUTES / VOUCH_SESSION_MAX_HOURS).
    idle_timeout_minutes = models.PositiveIntegerField(null=True, blank=True)
    absolute_timeout_hours = models.PositiveIntegerField(null=True, blank=True)
    # Networks members may use, one CIDR per line; empty: anywhere.
    allowed_networks = models.TextField(blank=True)
    min_password_length = models.PositiveSmallIntegerField(null=True, blank=True)
    restore_needs_admin_approval = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"security settings of company {self.company_id}"
