"""The company's branding: one row (pk 1) in its database, the logo a file on its
encrypted storage like every other company file."""

from __future__ import annotations

import uuid

from django.db import models

from vouch.vault.files import encrypted_storage


def logo_file_name(instance: Branding, filename: str) -> str:
    """A new random name for each logo: it is also the logo's version in its address,
    so a browser never shows an old logo from its cache."""
    return f"branding/{uuid.uuid4().hex}"


class Branding(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    # A PNG Vouch drew itself from the upload (branding.images); empty: no logo.
    logo = models.FileField(storage=encrypted_storage, upload_to=logo_file_name, max_length=100, blank=True)
    logo_width = models.PositiveIntegerField(default=0)
    logo_height = models.PositiveIntegerField(default=0)
    logo_size = models.PositiveIntegerField(default=0)
    # "#rrggbb", checked for contrast (branding.colours); empty: Vouch's own blue.
    accent = models.CharField(max_length=7, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        app_label = "references"

    def __str__(self) -> str:
        return "Branding"

    @property
    def logo_version(self) -> str:
        """The hex of the stored file's name ("" when there is no logo)."""
        return self.logo.name.rsplit("/", 1)[-1] if self.logo.name else ""

    @classmethod
    def for_reading(cls) -> Branding:
        """The saved branding, or none (unsaved) when nothing was set yet."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)
