"""Recognising a full disk from real errors (issue 15, item 6): ENOSPC from /dev/full, and
SQLite's SQLITE_FULL through Vouch's backend, which no
``except DatabaseError`` swallows. The whole server on a full disk: tests/server/test_disk_full.py."""

from __future__ import annotations

import errno
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import DatabaseError
from django.db.utils import load_backend

from vouch.core import diskfull


def test_enospc_from_a_file_write_is_storage_full():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(OSError) as raised, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")
    assert raised.value.errno == errno.ENOSPC
    assert diskfull.is_storage_full(raised.value)
    try:
        raise RuntimeError("wrapped") from raised.value
    except RuntimeError as wrapped:
        assert diskfull.is_storage_full(wrapped)
    assert not diskfull.is_storage_full(OSError(errno.EACCES, "denied"))


def test_sqlite_full_is_raised_as_storage_full_not_a_database_error(tmp_path, django_db_blocker):
    settings = {
        "ENGINE": "vouch.tenancy.sqlite",
        "NAME": str(tmp_path / "small.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 5},
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "TIME_ZONE": None,
        "TEST": {},
    }

    def fill() -> BaseException | None:
        connection = load_backend(settings["ENGINE"]).DatabaseWrapper(settings, "diskfull_sqlite")
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE t (value blob)")
            # SQLite's own limit on a database's size gives the same SQLITE_FULL as a full disk.
            cursor.execute("PRAGMA max_page_count = 8")
        try:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (zeroblob(100000))")
        except BaseException as error:  # noqa: BLE001 - judged below, in the test's thread
            return error
        finally:
            connection.close()
        return None

    # In a thread of its own, as a server's request thread: a browser test earlier in this
    # process leaves Playwright's event loop running in the main thread, where Django
    # refuses synchronous database calls.
    with django_db_blocker.unblock(), ThreadPoolExecutor(max_workers=1) as pool:
        raised = pool.submit(fill).result(timeout=60)
    assert isinstance(raised, diskfull.StorageFull), repr(raised)
    assert not isinstance(raised, DatabaseError)
    assert "full" in str(raised)
    assert diskfull.is_storage_full(raised)
