"""Fixtures for the security event log tests."""

from __future__ import annotations

import pytest
from django.db import connection

from vouch.audit import triggers


@pytest.fixture
def committed_chain(transactional_db):
    """Rows really committed (so threads and migrations see them); emptied before the
    flush, which the append-only triggers would otherwise refuse."""
    yield
    triggers.drop(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_securityevent")
            cursor.execute("DELETE FROM audit_chainhead")
    finally:
        triggers.create(connection)
