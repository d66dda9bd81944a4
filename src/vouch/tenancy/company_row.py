"""A company by its id, through SQL compiled once (vouch.core.db): what the background
worker's tasks start with, several times a task (the email's sender, its branding, the
planning), where the ORM compiled the same query each time."""

from __future__ import annotations

import uuid

from django.db import router

from vouch.core.db import PreparedLookup
from vouch.tenancy.models import Company

_company_by_pk = PreparedLookup(lambda: Company.objects.all())


def company_by_id(company_id: uuid.UUID | str) -> Company | None:
    """``Company.objects.filter(pk=company_id).first()``, the same row."""
    return _company_by_pk.get(company_id, using=router.db_for_read(Company))
