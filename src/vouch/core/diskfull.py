"""A full disk: recognising it, saying so in the log (once per interval), and on /healthz.

A write that cannot be stored because the storage is full is answered with a clear 503
(``vouch.web.errors.server_error``), never a 500 or a misleading 429. Recognised:
SQLite's "database or disk is full" (raised as :class:`StorageFull` by Vouch's SQLite
backend), PostgreSQL's ``disk_full`` (SQLSTATE 53100), and ``OSError`` ENOSPC or EDQUOT
from any file Vouch writes (outbox, keys, certificates)."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from pathlib import Path

import structlog

log = structlog.get_logger("vouch.storage")

RETRY_AFTER = 60  # seconds, sent with the 503
LOG_EVERY = 60  # seconds: at most one "storage is full" line per process in each
# Below this much free space in the data directory, /healthz says the storage is full:
# SQLite needs whole pages (and its journal) for any write.
MIN_FREE_BYTES = 1024 * 1024
# How long /healthz keeps saying "full" after PostgreSQL refused a write for lack of
# space: its disk is not one Vouch can measure.
REMEMBER_POSTGRES = 30  # seconds

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
POSTGRES_DISK_FULL = "53100"


class StorageFull(Exception):
    """A write could not be stored: the storage is full.

    Deliberately not a ``django.db.DatabaseError``: Django's database cache (and code
    that expects lost races) reads a failed write as "someone else won" and carries on,
    so allauth's sign-up rate limit, unable to take its lock, answered 429."""


def is_storage_full(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, says the storage is full."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, StorageFull):
            return True
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        if isinstance(error, sqlite3.Error) and is_sqlite_full(error):
            return True
        if getattr(error, "sqlstate", None) == POSTGRES_DISK_FULL:  # psycopg.errors.DiskFull
            _postgres_refused()
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def raise_postgres_disk_full(execute, sql, params, many, context):
    """An execute wrapper on every PostgreSQL connection (``install``): ``disk_full`` is
    raised as :class:`StorageFull`, so that no ``except DatabaseError`` (Django's
    database cache, when there is no Redis) takes it for a lost race."""
    from django.db import DatabaseError

    try:
        return execute(sql, params, many, context)
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) == POSTGRES_DISK_FULL:
            _postgres_refused()
            raise StorageFull(str(error.__cause__)) from error
        raise


def _on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor == "postgresql" and raise_postgres_disk_full not in connection.execute_wrappers:
        connection.execute_wrappers.append(raise_postgres_disk_full)


def install() -> None:
    """Wrap every new PostgreSQL connection (SQLite's: ``vouch.tenancy.sqlite``)."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection_created, dispatch_uid="vouch.core.diskfull")


def is_sqlite_full(error: sqlite3.Error) -> bool:
    # Extended codes keep the primary code in their low byte. SQLite reports ENOSPC as
    # SQLITE_FULL; a quota (EDQUOT) comes back as a plain I/O error and is not told apart.
    return (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL


_lock = threading.Lock()
_last_logged = 0.0
_refused = 0  # requests refused since the last line
_postgres_full_at = 0.0


def _postgres_refused() -> None:
    global _postgres_full_at
    _postgres_full_at = time.monotonic()


def note_refused(error: BaseException | str, request_id: str | None = None) -> None:
    """Log that a request was answered 503 for lack of space: the first in each
    ``LOG_EVERY`` seconds with its request id and cause, the others counted into the next line."""
    global _last_logged, _refused
    with _lock:
        _refused += 1
        now = time.monotonic()
        if _last_logged and now - _last_logged < LOG_EVERY:
            return
        refused, _refused, _last_logged = _refused, 0, now
    log.error(
        "storage_full",
        message="The disk is full: Vouch cannot save. Free space; it recovers by itself.",
        request_id=request_id,
        cause=(error if isinstance(error, str) else f"{type(error).__name__}: {error}")[:300],
        refused=refused,
    )


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def storage_state(data_dir: Path) -> str:
    """``"ok"`` or ``"full"``, for /healthz: the data directory's free space, and whether
    PostgreSQL refused a write for lack of space lately."""
    try:
        if free_bytes(data_dir) < MIN_FREE_BYTES:
            return "full"
    except OSError:
        return "error"
    if _postgres_full_at and time.monotonic() - _postgres_full_at < REMEMBER_POSTGRES:
        return "full"
    return "ok"
