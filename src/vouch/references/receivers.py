"""Stored files go with their rows: deleting an attachment (or its candidate, by
cascade) removes the encrypted file once the deletion has committed."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from vouch.references.models import Attachment, ReportFile


@receiver(post_delete, sender=Attachment)
@receiver(post_delete, sender=ReportFile)  # a request's stored report PDF, by cascade too
def remove_stored_file(sender, instance: Attachment | ReportFile, using: str, **kwargs) -> None:
    name = instance.file.name
    if not name:
        return
    storage = instance.file.storage
    # Resolved now, inside the company context the deletion runs in; removed only
    # after commit, so a rolled-back deletion keeps a row whose file still exists.
    transaction.on_commit(storage.remover(name), using=using, robust=True)
