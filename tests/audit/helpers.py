"""Helpers for the security event log tests: an attacker with database access."""

from __future__ import annotations

import contextlib

from django.db import connection

from vouch.audit import triggers
from vouch.audit.models import SecurityEvent


@contextlib.contextmanager
def attacker():
    """Raw SQL with the append-only triggers dropped, as someone with database write
    access could; the triggers come back afterwards."""
    triggers.drop(connection)
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        triggers.create(connection)


def all_rows_text() -> str:
    """Every stored value of every event, as one string, for "never stored" checks."""
    return "\n".join(
        repr(row)
        for row in SecurityEvent.objects.order_by("id").values_list(*[f.attname for f in SecurityEvent._meta.fields])
    )


def events(action=None, **filters):
    qs = SecurityEvent.objects.order_by("id")
    if action is not None:
        qs = qs.filter(action=str(action))
    return list(qs.filter(**filters))
