"""Company data keys, stored only wrapped by a master key. Control database."""

from __future__ import annotations

from django.db import models


class KeyPurpose(models.TextChoices):
    # Encrypts field values and files; rotated by ``vouch keys rotate-company``.
    DATA = "data", "Data"
    # Keys the blind indexes (HMAC); kept across data-key rotations so lookups never
    # miss while values are re-encrypted.
    INDEX = "index", "Blind index"


class KeyState(models.TextChoices):
    ACTIVE = "active", "Active"  # encrypts new values
    # Superseded by a newer version; still opens old ciphertext until re-encryption
    # finishes, then the row is deleted.
    RETIRING = "retiring", "Retiring"


class KeyScheme(models.IntegerChoices):
    # Wrapped by the master key only (rows from before company KEKs; `vouch setup` or
    # `vouch migrate` moves them to the scheme below).
    MASTER = 1, "Master key only"
    # Wrapped by the company's KEK (kept only in the key store), then by the master key:
    # with the KEK destroyed at purge, the row opens nothing, whatever database holds it.
    COMPANY_KEK = 2, "Company KEK, then master key"


class DataKey(models.Model):
    company = models.ForeignKey("tenancy.Company", on_delete=models.CASCADE, related_name="data_keys")
    purpose = models.CharField(max_length=8, choices=KeyPurpose.choices)
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=8, choices=KeyState.choices, default=KeyState.ACTIVE)
    master_version = models.PositiveIntegerField()
    # nonce || AES-256-GCM(master key, inner, aad = identity of this row), where inner is
    # the data key itself (scheme MASTER) or "VKEK\x01" || nonce || AES-256-GCM(company
    # KEK, data key, aad = identity of this row) (scheme COMPANY_KEK): see vault.keyring.
    wrapped = models.BinaryField()
    scheme = models.PositiveSmallIntegerField(choices=KeyScheme.choices, default=KeyScheme.MASTER)
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "purpose", "version"], name="vault_datakey_unique_version"),
        ]
        indexes = [models.Index(fields=["master_version"], name="vault_datakey_master_idx")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.purpose} v{self.version}"


class InstallationKeyPurpose(models.TextChoices):
    # Encrypts the secrets behind people's second factors (TOTP secrets, recovery-code
    # seeds): see vouch.vault.account_secrets.
    ACCOUNTS = "accounts", "Account secrets"


class InstallationKey(models.Model):
    """A key of the whole installation rather than of one company, stored only wrapped
    by the master key (like ``DataKey``), so a copy of the control database alone opens
    nothing. Re-wrapped by ``vouch keys rotate-master``."""

    purpose = models.CharField(max_length=16, choices=InstallationKeyPurpose.choices)
    version = models.PositiveIntegerField()
    master_version = models.PositiveIntegerField()
    # nonce || AES-256-GCM(master key, key, aad = identity of this row)
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version"], name="vault_installationkey_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} v{self.version}"
