"""A referee's saved progress, written by one compare-and-set UPDATE whose SQL is
composed once per database engine.

Autosave runs every few seconds while a referee types, and `make bench` measures it.
Through ``QuerySet.update()`` Django built and compiled this statement again for each
save, which cost more than the rest of the save together. The statement is fixed, so
it is composed here from the models' own table and column names, once per engine, and
every value goes through its field's ``get_db_prep_save``/``get_db_prep_value`` as
``update()`` would send it (an encrypted field still takes only ciphertext)."""

from __future__ import annotations

from datetime import datetime

from django.db import connections, router

from vouch.core.db import ComposedSQL, Names
from vouch.references.request_models import (
    OPEN_REQUEST_STATUSES,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
)
from vouch.vault.fields import Sealed


def _compose(n: Names) -> str:
    statuses = ", ".join(["%s"] * len(OPEN_REQUEST_STATUSES))
    return (
        f"UPDATE {n.table(Reference)} "  # noqa: S608 (names from the models)
        f"SET {n.column(Reference, 'answers')} = %s, {n.column(Reference, 'saved_at')} = %s "
        f"WHERE {n.column(Reference, 'id')} = %s AND {n.column(Reference, 'status')} = %s "
        f"AND {n.column(Reference, 'saved_at')} = %s "
        f"AND {n.column(Reference, 'request')} IN "
        f"(SELECT {n.column(ReferenceRequest, 'id')} FROM {n.table(ReferenceRequest)} "
        f"WHERE {n.column(ReferenceRequest, 'id')} = %s AND {n.column(ReferenceRequest, 'status')} IN ({statuses}))"
    )


SAVE_IF_UNCHANGED = ComposedSQL(_compose)


def save_if_unchanged(reference: Reference, answers: Sealed, now: datetime) -> bool:
    """Store ``answers`` (already sealed for this row) and ``now`` as the reference's
    progress if the row is still as it was loaded: in progress, saved at the loaded
    ``saved_at``, and its request open. False (nothing written) otherwise."""
    alias = router.db_for_write(Reference)
    connection = connections[alias]
    meta = Reference._meta
    saved_at = meta.get_field("saved_at")
    params = [
        meta.get_field("answers").get_db_prep_save(answers, connection),
        saved_at.get_db_prep_save(now, connection),
        meta.pk.get_db_prep_value(reference.pk, connection),
        ReferenceStatus.IN_PROGRESS.value,
        saved_at.get_db_prep_value(reference.saved_at, connection),
        ReferenceRequest._meta.pk.get_db_prep_value(reference.request_id, connection),
        *(status.value for status in OPEN_REQUEST_STATUSES),
    ]
    return SAVE_IF_UNCHANGED.execute(params, using=alias) == 1
