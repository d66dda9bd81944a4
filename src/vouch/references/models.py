"""Candidates and the files attached to them: the start of a company's reference checks.

Company data: it lives only in the company's database (``VOUCH_COMPANY_APPS``).
Everything that identifies a person is encrypted with the company's key
(``vouch.vault``), including an attachment's original file name; the primary keys
are UUIDs because the ciphertext is bound to them. Email and phone can be found by
exact value through their blind indexes; names by their words (``SearchTerm``) and the
starts of their words (``NamePrefix``), keyed digests too.
People who added things are referred to by their control-plane user id (no
cross-database foreign key)."""

from __future__ import annotations

import uuid

from django.db import models

from vouch.vault.fields import BlindIndexField, EncryptedCharField, EncryptedEmailField, EncryptedTextField
from vouch.vault.files import encrypted_storage


class Candidate(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    name = EncryptedCharField(max_length=200)
    email = EncryptedEmailField()
    phone = EncryptedCharField(max_length=40, blank=True, default="")
    notes = EncryptedTextField(blank=True, default="")
    email_index = BlindIndexField(source="email", kind="email")
    phone_index = BlindIndexField(source="phone", kind="phone")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


def attachment_file_name(instance: Attachment, filename: str) -> str:
    """A random name for the stored file. Never the uploaded name: a file called
    "Jane Doe - medical note.pdf" would put personal data in the directory listing."""
    return f"attachments/{uuid.uuid4().hex}"


class Attachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(storage=encrypted_storage, upload_to=attachment_file_name, max_length=100)
    original_name = EncryptedCharField(max_length=255)
    # Set by Vouch from the checked contents, never taken from the upload.
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    uploaded_at = models.DateTimeField(auto_now_add=True)
    uploaded_by_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.original_name


class Questionnaire(models.Model):
    """A company's questionnaire template. Its questions live in numbered, immutable
    versions: a request points at the version it was sent with. Names and prompts are
    company configuration, not personal data, so they are plain fields.

    ``builtin_key`` marks Vouch's own snapshot of a built-in template (made when a
    built-in is first used in a request); those are not listed as company templates."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    builtin_key = models.CharField(max_length=50, blank=True, default="", db_index=True)
    copied_from = models.CharField(max_length=100, blank=True, default="")
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # One snapshot per built-in, however many requests use it at once.
            models.UniqueConstraint(
                fields=["builtin_key"], condition=~models.Q(builtin_key=""), name="questionnaire_one_builtin_snapshot"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class QuestionnaireVersion(models.Model):
    """One immutable set of questions (validated by ``questionnaires.validate``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    questions = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["questionnaire_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["questionnaire", "number"], name="questionnaire_version_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire_id} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        # A sent request's questions must never change under it: a version is
        # written once. Editing a template adds a version instead.
        if not self._state.adding:
            raise ValueError("a questionnaire version cannot be changed once created")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("a questionnaire version cannot be deleted")


# The workflow's records live in their own module to keep this one readable; they are
# imported here so Django finds them as this app's models.
from vouch.references.branding.models import Branding  # noqa: E402,F401
from vouch.references.request_models import (  # noqa: E402,F401
    Actor,
    Flag,
    NamePrefix,
    Notice,
    NoticePreference,
    OutgoingMail,
    Reference,
    ReferenceRequest,
    ReportFile,
    ReportView,
    SearchTerm,
    TimelineEvent,
    Touch,
    WorkflowSettings,
)
