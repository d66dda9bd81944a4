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

from vouch.references.request_models import (
    OPEN_REQUEST_STATUSES,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
)
from vouch.vault.fields import Sealed

_statements: dict[str, str] = {}


def _statement(connection) -> str:
    found = _statements.get(connection.vendor)
    if found is None:
        name = connection.ops.quote_name
        # The models' tables (their _meta): a reference, and the reference request it belongs to.
        references, reference_requests = Reference._meta, ReferenceRequest._meta

        def column(meta, field: str) -> str:
            return name(meta.get_field(field).column)

        statuses = ", ".join(["%s"] * len(OPEN_REQUEST_STATUSES))
        # Names from the models, quoted by the backend; every value is a parameter.
        found = _statements[connection.vendor] = (
            f"UPDATE {name(references.db_table)} "  # noqa: S608
            f"SET {column(references, 'answers')} = %s, {column(references, 'saved_at')} = %s "
            f"WHERE {column(references, 'id')} = %s AND {column(references, 'status')} = %s "
            f"AND {column(references, 'saved_at')} = %s "
            f"AND {column(references, 'request')} IN "
            f"(SELECT {column(reference_requests, 'id')} FROM {name(reference_requests.db_table)} "
            f"WHERE {column(reference_requests, 'id')} = %s AND {column(reference_requests, 'status')} IN ({statuses}))"
        )
    return found


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
    with connection.cursor() as cursor:
        cursor.execute(_statement(connection), params)
        return cursor.rowcount == 1
