"""Security events in the control database: append-only and hash-chained.

Each row carries ``prev_hash`` (the previous row's ``hash``) and its own ``hash``: an
HMAC-SHA256 over ``prev_hash`` and the canonical JSON of its fields, keyed with a key
derived from SECRET_KEY, so someone who can write to the database but does not hold the
key cannot edit, delete or reorder rows without ``vouch audit verify`` noticing.

Rows are never updated or deleted: the model refuses in Python and database triggers
(migration 0001) refuse UPDATE and DELETE in SQL. The one exception is the database
nulling ``actor`` when a user is deleted (SET_NULL); ``actor_label`` keeps who it was and
is what the hash covers."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    BLOCKED = "blocked", "Blocked"


class EventAction(models.TextChoices):
    """OWASP Application Logging Vocabulary names where one fits; Vouch names otherwise."""

    AUTHN_LOGIN_SUCCESS = "authn_login_success", "Signed in"
    AUTHN_LOGIN_FAIL = "authn_login_fail", "Sign-in failed"
    AUTHN_LOGIN_LOCK = "authn_login_lock", "Sign-in locked"
    AUTHN_LOGIN_UNLOCK = "authn_login_unlock", "Browser unlocked by emailed link"
    AUTHN_LOGOUT = "authn_logout", "Signed out"
    AUTHN_PASSWORD_CHANGE = "authn_password_change", "Password changed"
    AUTHN_PASSWORD_RESET = "authn_password_reset", "Password reset"
    AUTHN_MFA_FAIL = "authn_mfa_fail", "Two-factor code refused"
    AUTHN_MFA_ADDED = "authn_mfa_added", "Two-factor method added"
    AUTHN_MFA_REMOVED = "authn_mfa_removed", "Two-factor method removed"
    AUTHN_MFA_RESET = "authn_mfa_reset", "Recovery codes regenerated"
    AUTHN_TOKEN_REUSE = "authn_token_reuse", "Used token presented again"
    AUTHZ_FAIL = "authz_fail", "Access refused"
    AUTHZ_CHANGE = "authz_change", "Access changed"
    SESSION_CREATED = "session_created", "Session created"
    SESSION_EXPIRED = "session_expired", "Session expired"
    SESSION_REVOKED = "session_revoked", "Session ended"
    USER_CREATED = "user_created", "Account created"
    USER_UPDATED = "user_updated", "Account changed"
    USER_EMAIL_CHANGED = "user_email_changed", "Email address changed"
    USER_EMAIL_CONFIRMED = "user_email_confirmed", "Email address confirmed"
    PRIVILEGE_PERMISSIONS_CHANGED = "privilege_permissions_changed", "Role changed"
    MEMBER_DEACTIVATED = "member_deactivated", "Member deactivated"
    MEMBER_REACTIVATED = "member_reactivated", "Member reactivated"
    INVITATION_SENT = "invitation_sent", "Invitation sent"
    INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
    INVITATION_REVOKED = "invitation_revoked", "Invitation withdrawn"
    DATA_EXPORT = "data_export", "Data exported"
    DATA_ERASED = "data_erased", "Data erased"
    DATA_INTEGRITY_FAIL = "data_integrity_fail", "Encrypted data failed its integrity check"
    KEYS_MASTER_ROTATED = "keys_master_rotated", "Master key rotated"
    KEYS_COMPANY_ROTATED = "keys_company_rotated", "Company data key rotated"
    KEYS_SHREDDED = "keys_shredded", "Company keys destroyed"
    TENANCY_WRONG_DATABASE = "tenancy_wrong_database", "Company data refused in the wrong database"
    COMPANY_DELETION_SCHEDULED = "company_deletion_scheduled", "Company deletion scheduled"
    COMPANY_DELETION_CANCELLED = "company_deletion_cancelled", "Company deletion cancelled"
    COMPANY_DELETED = "company_deleted", "Company deleted"
    COMPANY_SECURITY_CHANGED = "company_security_changed", "Company security settings changed"
    COMPANY_BRANDING_CHANGED = "company_branding_changed", "Company branding changed"
    ACCOUNT_SUSPENDED = "account_suspended", "Account suspended"
    ACCOUNT_RESTORE_PENDING = "account_restore_pending", "Account restore waits for approval"
    ACCOUNT_RESTORED = "account_restored", "Account restored"
    AUTHN_STEP_UP_FAIL = "authn_step_up_fail", "Sign-in code refused"
    LINK_INVALID = "link_invalid", "Private link refused"
    SYS_STARTUP = "sys_startup", "System started"
    BACKUP_TAKEN = "backup_taken", "Backups taken"
    BACKUP_FAILED = "backup_failed", "Backup failed"
    BACKUP_REMOVED = "backup_removed", "Backups of a deleted company removed"
    AUDIT_EVENTS_NOT_RECORDED = "audit_events_not_recorded", "Security events not recorded (storage was full)"
    # Restores and restore drills (vouch.backups.restore, vouch.backups.drills).
    DATA_RESTORE_STARTED = "data_restore_started", "Restore from a backup started"
    DATA_RESTORED = "data_restored", "Data restored from a backup"
    DATA_RESTORE_ROLLED_BACK = "data_restore_rolled_back", "Restore rolled back"
    BACKUP_DRILL = "backup_drill", "Restore drill"
    # Intrusion detection and request limits (vouch.shield).
    INTRUSION_DETECTED = "intrusion_detected", "Hostile request detected"
    INTRUSION_BLOCKED = "intrusion_blocked", "Source blocked"
    INTRUSION_UNBLOCKED = "intrusion_unblocked", "Block lifted"
    RATE_LIMITED = "rate_limited", "Requests limited"
    # Abuse monitoring (vouch.abuse).
    ABUSE_DETECTED = "abuse_detected", "Unusual use detected"
    ABUSE_RULE_CHANGED = "abuse_rule_changed", "Unusual-use threshold changed"
    # Need-to-know staff access (vouch.support).
    SUPPORT_GRANT_REQUESTED = "support_grant_requested", "Support access requested"
    SUPPORT_GRANT_APPROVED = "support_grant_approved", "Support access approved"
    SUPPORT_GRANT_DECLINED = "support_grant_declined", "Support access declined"
    SUPPORT_GRANT_REVOKED = "support_grant_revoked", "Support access revoked"
    SUPPORT_GRANT_EXPIRED = "support_grant_expired", "Support access ended"
    SUPPORT_PAGE_VIEWED = "support_page_viewed", "Page viewed by support"
    # Webhook endpoints (vouch.webhooks): where company data events are sent, and with what secret.
    WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint_created", "Webhook endpoint added"
    WEBHOOK_ENDPOINT_CHANGED = "webhook_endpoint_changed", "Webhook endpoint changed"
    WEBHOOK_SECRET_ROTATED = "webhook_secret_rotated", "Webhook secret rotated"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint_disabled", "Webhook endpoint disabled"
    WEBHOOK_ENDPOINT_DELETED = "webhook_endpoint_deleted", "Webhook endpoint deleted"
    # API keys (vouch.api).
    API_KEY_CREATED = "api_key_created", "API key created"
    API_KEY_REVOKED = "api_key_revoked", "API key revoked"
    API_KEY_NEW_NETWORK = "api_key_new_network", "API key used from a new network"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("security events are append-only")

    def delete(self):
        raise PermissionError("security events are append-only")


class SecurityEvent(models.Model):
    # Position in the chain: 1, 2, 3... with no gaps (assigned under the chain lock).
    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # "user:<id>" (never an email): who it was, even after the user is removed.
    actor_label = models.CharField(max_length=64, blank=True)
    # Not a foreign key: a deleted or tombstoned company keeps its events.
    company_id = models.UUIDField(null=True, blank=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=128, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["company_id", "-id"], name="audit_event_company_idx")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.outcome}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("security events are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("security events are append-only")

    @property
    def action_label(self) -> str:
        try:
            return EventAction(self.action).label
        except ValueError:
            return self.action


class ChainHead(models.Model):
    """One row (pk=1): the last position and hash of the chain, and their MAC.

    Appends lock and update it, so the chain never forks; ``verify`` compares the last
    row with it, so deleting rows from the end is noticed too. ``mac`` is an HMAC of
    ``seq`` and ``hash`` under a key the database does not hold (``chain.head_mac``), so
    a head moved by hand does not verify; an append never re-MACs a head that fails, so
    the mark stays. Triggers (migration 0002) refuse moving it back in SQL."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    mac = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"head #{self.seq}"
