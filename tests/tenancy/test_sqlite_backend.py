"""The embedded SQLite backend (``vouch.tenancy.sqlite``) waits for the write lock in
short steps of its own instead of SQLite's busy handler (issue #5, autosave under load).

Two real Django connections, built from the settings Vouch gives every SQLite database
(WAL, ``BEGIN IMMEDIATE``), share one file: connection A takes the write lock and B
tries to write. B must wait while A holds the lock, get in within a few milliseconds of
A's commit (SQLite's own handler sleeps up to 100 ms between tries), give up after the
database's ``timeout`` (not SQLite's), and never retry inside a transaction, where a
busy answer is a real conflict. Nothing here is mocked; the only waits are bounded
joins on threads that must still be blocked.

SQLite only: with VOUCH_TEST_SERVICES=1 every database is PostgreSQL."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable

import pytest
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db import connection as control_connection
from django.db import connections as django_connections
from django.db.utils import OperationalError, load_backend

from vouch.core.context import company_context
from vouch.settings import _sqlite

pytestmark = pytest.mark.skipif(
    control_connection.vendor != "sqlite", reason="the embedded SQLite backend only (this run uses PostgreSQL)"
)

BACKEND = "vouch.tenancy.sqlite.base"
# How long A holds the write lock while B waits. SQLite's own handler tries again 0, 1,
# 3, 8, 18, 33, 53, 78, 103, 128, 178, 228 and 328 ms after the first refusal: a commit
# at 240 ms would keep B asleep for about 90 ms more.
HOLD = 0.24
ROUNDS = 5
# After A's commit B must be in within this (the backend pauses at most 2 ms, jittered).
PROMPT = 0.05


def sqlite_wrapper(path, alias: str, **options):
    """A Django connection (not yet opened) to ``path`` with the settings Vouch gives
    every embedded database, and ``options`` on top."""
    entry = _sqlite(path)
    entry["OPTIONS"].update(options)
    configured = django_connections.configure_settings({DEFAULT_DB_ALIAS: {}, alias: entry})[alias]
    return load_backend(configured["ENGINE"]).DatabaseWrapper(configured, alias)


def run_sql(db, *statements: str) -> None:
    with db.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def rows(db) -> list[str]:
    with db.cursor() as cursor:
        cursor.execute("SELECT who FROM t ORDER BY id")
        return [who for (who,) in cursor.fetchall()]


def busy_code(error: BaseException) -> int:
    """The SQLite result code behind Django's OperationalError."""
    cause = error.__cause__
    assert isinstance(cause, sqlite3.OperationalError), repr(cause)
    return cause.sqlite_errorcode


@pytest.fixture
def database(tmp_path, django_db_blocker, monkeypatch):
    """A fresh SQLite file with a table ``t``: returns a factory of connections to it
    (opened, and allowed to be used from a writer thread). All are closed afterwards."""
    # The browser tests' session-wide Playwright (its sync API runs the test thread
    # inside an event loop) makes Django refuse to open a connection here when they ran
    # earlier in the same process; these connections are plain, synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    path = tmp_path / "busy.sqlite3"
    opened = []

    def connect(name: str, **options):
        db = sqlite_wrapper(path, name, **options)
        db.ensure_connection()
        db.inc_thread_sharing()
        opened.append(db)
        return db

    with django_db_blocker.unblock():
        connect("setup")
        run_sql(opened[0], "CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT NOT NULL)")
        yield connect
        for db in opened:
            db.close()


class Writer(threading.Thread):
    """Runs ``work(db)`` once, noting when it returned (or what it raised). The
    connection is this thread's ``db.alias`` while it runs, so ``atomic(using=...)``
    finds it."""

    def __init__(self, db, work: Callable):
        super().__init__(daemon=True)
        self.db, self.work = db, work
        self.finished_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        django_connections[self.db.alias] = self.db
        try:
            self.work(self.db)
            self.finished_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            del django_connections[self.db.alias]


def insert_autocommit(db) -> None:
    run_sql(db, "INSERT INTO t (who) VALUES ('b')")


def insert_in_atomic(db) -> None:
    # BEGIN IMMEDIATE is what is refused (and retried); the insert then runs in the block.
    with transaction.atomic(using=db.alias):
        run_sql(db, "INSERT INTO t (who) VALUES ('b')")


def insert_many(db) -> None:
    with db.cursor() as cursor:
        cursor.executemany("INSERT INTO t (who) VALUES (%s)", [("b",), ("b",)])


@pytest.mark.parametrize(
    ("work", "written"),
    [(insert_autocommit, 1), (insert_in_atomic, 1), (insert_many, 2)],
    ids=["autocommit", "atomic", "executemany"],
)
def test_a_blocked_write_waits_for_the_lock_and_gets_in_promptly_after_the_commit(database, work, written):
    a, b = database("a"), database("b")
    # Every time B's statement reaches SQLite (each try), as SQLite's trace reports it.
    tries: list[float] = []
    b.connection.set_trace_callback(lambda sql: tries.append(time.monotonic()))
    delays, tries_while_held = [], []
    for _ in range(ROUNDS):
        run_sql(a, "BEGIN IMMEDIATE", "INSERT INTO t (who) VALUES ('a')")
        tries.clear()
        writer = Writer(b, work)
        writer.start()
        writer.join(HOLD)
        assert writer.is_alive(), f"B wrote while A held the lock: {writer.error!r}"
        run_sql(a, "COMMIT")
        committed = time.monotonic()
        writer.join(30)
        assert not writer.is_alive(), "B never got the lock after A committed"
        assert writer.error is None, writer.error
        delays.append(writer.finished_at - committed)
        tries_while_held.append(sum(1 for moment in list(tries) if moment < committed))
    assert sorted(rows(a)) == sorted(["a"] * ROUNDS + ["b"] * ROUNDS * written)
    assert rows(b) == rows(a)
    # Medians, so that one scheduling hiccup on a loaded machine does not fail the test.
    # SQLite's own handler would put every round near 90 ms, after a dozen tries.
    assert statistics.median(delays) < PROMPT, [f"{d * 1000:.1f} ms" for d in delays]
    assert max(delays) < 1.0, [f"{d * 1000:.1f} ms" for d in delays]
    # Pauses of 2 ms at most: over 100 tries in the 240 ms; 40 means one every 6 ms.
    assert statistics.median(tries_while_held) >= 40, tries_while_held


def test_the_database_timeout_bounds_the_wait_outside_a_transaction(database):
    a, b = database("a"), database("b", timeout=0.05)
    run_sql(a, "BEGIN IMMEDIATE", "INSERT INTO t (who) VALUES ('a')")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked") as refused:
            run_sql(b, "INSERT INTO t (who) VALUES ('b')")
        waited = time.monotonic() - started
        # It kept trying for the whole timeout (not refused at once, as a busy timeout
        # of 0 alone would), and gave up then (not after SQLite's or Django's default).
        assert 0.049 <= waited < 1.0, waited
        assert busy_code(refused.value) & 0xFF == sqlite3.SQLITE_BUSY

        # The same for the BEGIN IMMEDIATE that opens an atomic block.
        django_connections[b.alias] = b
        try:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                insert_in_atomic(b)
            waited = time.monotonic() - started
            assert 0.049 <= waited < 1.0, waited
        finally:
            del django_connections[b.alias]
        assert not b.in_atomic_block
    finally:
        run_sql(a, "COMMIT")
    # Nothing of B's was written, and B is usable once the lock is free.
    assert rows(a) == ["a"]
    run_sql(b, "INSERT INTO t (who) VALUES ('b')")
    assert rows(a) == ["a", "b"]


def test_inside_a_transaction_a_stale_snapshot_is_refused_at_once(database):
    """B read in a deferred transaction, then A committed a write: B's snapshot can never
    become a writer (SQLITE_BUSY_SNAPSHOT). Retrying would only spin until the timeout."""
    a, b = database("a"), database("b", timeout=2)
    run_sql(b, "BEGIN", "SELECT count(*) FROM t")
    try:
        run_sql(a, "INSERT INTO t (who) VALUES ('a')")
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused:
            run_sql(b, "INSERT INTO t (who) VALUES ('b')")
        assert time.monotonic() - started < 0.5
        assert busy_code(refused.value) == sqlite3.SQLITE_BUSY_SNAPSHOT
    finally:
        run_sql(b, "ROLLBACK")
    assert rows(b) == ["a"]


def test_inside_a_transaction_a_held_lock_is_refused_at_once(database):
    """B is in a transaction when A holds the write lock: a busy answer there is raised,
    not waited out (B's transaction may be what A is waiting for)."""
    a, b = database("a"), database("b", timeout=2)
    run_sql(b, "BEGIN", "SELECT count(*) FROM t")
    try:
        run_sql(a, "BEGIN IMMEDIATE", "INSERT INTO t (who) VALUES ('a')")
        try:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked") as refused:
                run_sql(b, "INSERT INTO t (who) VALUES ('b')")
            assert time.monotonic() - started < 0.5
            assert busy_code(refused.value) & 0xFF == sqlite3.SQLITE_BUSY
        finally:
            run_sql(a, "COMMIT")
    finally:
        run_sql(b, "ROLLBACK")
    assert rows(a) == ["a"]


def test_other_errors_are_not_retried(database):
    _, b = database("a"), database("b", timeout=2)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="no such table"):
        run_sql(b, "INSERT INTO missing (who) VALUES ('b')")
    assert time.monotonic() - started < 0.5


def _busy_timeout(db) -> int:
    with db.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        return cursor.fetchone()[0]


def test_a_new_connection_leaves_waiting_to_the_backend(database):
    b = database("b", timeout=3)
    assert _busy_timeout(b) == 0  # SQLite's own handler is off


@pytest.mark.django_db
def test_the_control_and_company_databases_use_the_backend(company):
    control = django_connections[DEFAULT_DB_ALIAS]
    assert type(control).__module__ == BACKEND
    assert _busy_timeout(control) == 0
    with company_context(company) as context:
        company_db = django_connections[context.alias]
        assert type(company_db).__module__ == BACKEND
        assert _busy_timeout(company_db) == 0
        assert company_db.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        with company_db.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
