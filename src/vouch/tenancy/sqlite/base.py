"""Django's SQLite backend, waiting for the write lock in short steps.

SQLite lets one connection write at a time. When another holds the lock, the busy
handler behind the sqlite3 module's ``timeout`` sleeps between tries, longer each time:
1, 2, 5, 10, 15, 20, 25 ... 100 ms. Under load a write that misses the lock a few times
sleeps on long after the lock came free: `make bench` found half of the autosave's time
in those sleeps (and its p99 near a second). The sqlite3 module has no way to install
another busy handler (``sqlite3_busy_handler``), so the waiting is done here instead:
once the connection is open its own busy timeout is 0, and a statement refused with
SQLITE_BUSY *outside* a transaction (``BEGIN IMMEDIATE``, which every Django
transaction starts with here, or a single autocommit statement) is tried again after
a pause of a fraction of a millisecond, growing to at most ``MAX_PAUSE``, until the
database's ``timeout`` has passed. A refused statement did nothing, so trying it again
is safe. Inside a transaction nothing is retried: the transaction holds the lock
from its start, so a busy answer there is a real conflict and is raised.

Opening the connection (its PRAGMAs) still uses SQLite's own handler and timeout.

"database or disk is full" (SQLITE_FULL), from a statement, a commit or opening a
connection, is raised as ``vouch.core.diskfull.StorageFull``, not as a DatabaseError:
Django's database cache swallows a DatabaseError on a write (a lost race to it), so a
full disk read as "the lock is taken" and sign-up answered 429."""

from __future__ import annotations

import random
import sqlite3
import time
from contextlib import contextmanager

from django.db.backends.sqlite3 import base

from vouch.core.diskfull import StorageFull, is_sqlite_full

MIN_PAUSE = 0.0002  # seconds
MAX_PAUSE = 0.002


def _busy(error: sqlite3.OperationalError) -> bool:
    # Extended codes (SQLITE_BUSY_RECOVERY, ...) keep SQLITE_BUSY in their low byte.
    return (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY


def _storage_full(error: BaseException) -> StorageFull | None:
    """The StorageFull that ``error`` is, if it is SQLite's full disk: the cursor sees
    sqlite3's own errors; a commit sees them wrapped by Django."""
    cause = error if isinstance(error, sqlite3.Error) else error.__cause__
    if isinstance(cause, sqlite3.Error) and is_sqlite_full(cause):
        return StorageFull(str(cause))
    return None


@contextmanager
def _full_is_storage_full():
    try:
        yield
    except Exception as error:
        full = _storage_full(error)
        if full is not None:
            raise full from error
        raise


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    wait_seconds = 20.0  # the database's "timeout" option, set by DatabaseWrapper

    def _retrying(self, run, *args):
        deadline, pause = None, MIN_PAUSE
        while True:
            try:
                return run(*args)
            except sqlite3.OperationalError as error:
                if not _busy(error) or self.connection.in_transaction:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.wait_seconds
                elif now >= deadline:
                    raise
                # Jittered, so two waiting writers do not keep trying in step.
                time.sleep(pause * random.uniform(0.5, 1.5))  # noqa: S311 - not a secret
                pause = min(pause * 1.5, MAX_PAUSE)

    def execute(self, query, params=None):
        # _full_is_storage_full written out: a context manager made for every query cost
        # more than the check.
        try:
            return self._retrying(super().execute, query, params)
        except Exception as error:
            full = _storage_full(error)
            if full is not None:
                raise full from error
            raise

    def executemany(self, query, param_list):
        with _full_is_storage_full():
            # A generator of parameters cannot be replayed: only a sequence is retried.
            if not isinstance(param_list, list | tuple):
                return super().executemany(query, param_list)
            return self._retrying(super().executemany, query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        self.busy_wait_seconds = float(params.get("timeout", 5.0))
        return params

    def get_new_connection(self, conn_params):
        with _full_is_storage_full():
            connection = super().get_new_connection(conn_params)
            connection.execute("PRAGMA busy_timeout = 0")
        return connection

    def _commit(self):
        with _full_is_storage_full():
            return super()._commit()

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.wait_seconds = self.busy_wait_seconds
        return cursor
