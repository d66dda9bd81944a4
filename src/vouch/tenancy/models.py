"""Companies: the tenants of Vouch. Lives in the control database."""

from __future__ import annotations

import uuid

from django.db import models


class Company(models.Model):
    """A customer of Vouch. Its region is chosen at signup and never changed by members."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    region = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
