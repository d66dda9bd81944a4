"""The token index, in the control database: which company (and which object in its
database) a private link leads to.

Only the SHA-256 of a link's token is stored. The token has 256 bits of randomness, so
an unsalted hash is enough: nobody can search that space, and a copy of this table
gives no usable link. A link carries no personal data: ``subject_id`` is the id of an
object in the company's own database."""

from __future__ import annotations

from django.db import models

from vouch.tenancy.models import Company


class Purpose(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    REFEREE = "referee", "Referee"


class Link(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)  # hex SHA-256; unique, so indexed
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    subject_id = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # revoke_for_subject / extend: all links of one object of one company.
            models.Index(fields=["company", "subject_id"], name="links_company_subject_idx"),
            models.Index(fields=["expires_at"], name="links_expires_idx"),
        ]

    def __str__(self) -> str:
        # Never the hash in full (it is not secret, but it names the link).
        return f"{self.purpose} link {self.pk} ({self.token_hash[:8]})"
