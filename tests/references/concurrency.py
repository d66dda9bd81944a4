"""Two writers on one row: waiting until the second's UPDATE is blocked on the first's lock."""

from __future__ import annotations

import threading
import time

from django.db import connections


def wait_until_blocked(context, tried: threading.Event, waiting: threading.Thread) -> None:
    """Until ``waiting``'s UPDATE is in the database, waiting for the lock."""
    deadline = time.monotonic() + 30
    connection = connections[context.alias]
    while time.monotonic() < deadline:
        assert waiting.is_alive(), "the waiting update finished while the first transaction still held the row"
        if connection.vendor == "sqlite":
            blocked = tried.is_set()  # its first try was refused: this connection holds the lock
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # else frozen for the transaction
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE%%'"
                )
                blocked = cursor.fetchone()[0] == 1
        if blocked:
            return
        tried.wait(0.01)
    raise AssertionError("the waiting update never reached the database")
