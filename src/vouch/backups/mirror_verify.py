"""The mirror is checked: a company database's copy, restored, must hold what the
database holds.

Litestream can, in rare races, upload a copy that lacks committed rows and say nothing
(one such race, with the application's checkpoints, is why vouch.settings raises
SQLite's autocheckpoint). So each time the live set (vouch.backups.mirror_scale) lets a
database go, after its last upload, it has :func:`verify` compare the two:

- the copy is restored (``litestream restore``, through
  vouch.backups.mirror.restore.restore_copy) into a private temporary directory;
- both are read in one read transaction each, the live database read-only (it is never
  written): for every table of ``sqlite_master`` (``sqlite_sequence`` included,
  Litestream's own ``_litestream_*`` tables and virtual tables left out: a virtual
  table's rows are in its shadow tables, which are compared), a SHA-256 of all its rows
  in rowid order (primary-key order for a WITHOUT ROWID table), and one of the schema
  (every ``sqlite_master`` entry);
- if the database's files changed meanwhile (its :func:`~vouch.backups.mirror_scale.signature`
  differs from the one recorded when it was let go, before or after), the answer is
  "unsure": it was written again, so it is live again and its next let-go checks it.

On a difference the live set logs an error, counts it and heals the copy:
:func:`heal_files` removes it (and Litestream's local state for the database), then the
database is registered and synced again, so Litestream uploads a whole new copy, and let
go (and checked) as usual. The copy's history before the heal goes with it: a copy that
is wrong is worth less than none that is right."""

from __future__ import annotations

import hashlib
import queue
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog

from vouch.backups.mirror import plan, purge, restore

log = structlog.get_logger(__name__)

SCHEMA = "sqlite_master"  # the key of the schema's hash among the tables'

SAME, DIFFERENT, UNSURE, FAILED = "same", "diverged", "unsure", "error"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # SAME, DIFFERENT, UNSURE or FAILED (the mirror could not be read)
    tables: tuple[str, ...] = ()  # DIFFERENT: the tables (or SCHEMA) that differ
    detail: str = ""
    ms: float = 0.0  # how long the check took


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _order(connection: sqlite3.Connection, table: str) -> str:
    try:
        connection.execute(f"SELECT rowid FROM {_quote(table)} LIMIT 0")  # noqa: S608 (a quoted table name)
        return "rowid"
    except sqlite3.OperationalError:  # WITHOUT ROWID: its primary key orders it
        columns = sorted((row[5], row[1]) for row in connection.execute(f"PRAGMA table_info({_quote(table)})"))
        return ", ".join(_quote(name) for position, name in columns if position)


def digest(connection: sqlite3.Connection) -> dict[str, str]:
    """Per table, a SHA-256 of its rows; under SCHEMA, one of ``sqlite_master``."""
    hashes = {}
    connection.execute("BEGIN")  # one snapshot for every table
    try:
        master = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE tbl_name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' ORDER BY type, name"
        ).fetchall()
        hashes[SCHEMA] = hashlib.sha256(repr(master).encode()).hexdigest()
        for kind, name, _table, sql in master:
            if kind != "table" or (sql or "").upper().startswith("CREATE VIRTUAL"):
                continue
            rows = hashlib.sha256()
            # repr() of a row tuple is unambiguous (types, lengths, exact floats).
            query = f"SELECT * FROM {_quote(name)} ORDER BY {_order(connection, name)}"  # noqa: S608 (quoted names)
            for row in connection.execute(query):
                rows.update(repr(row).encode())
            hashes[name] = rows.hexdigest()
    finally:
        connection.execute("COMMIT")
    return hashes


def _open_live(database: Path) -> sqlite3.Connection:
    uri = f"{database.resolve().as_uri()}?mode=ro"
    if not Path(f"{database}-wal").exists():
        # Everything is in the file. A read-only open would create an empty WAL, which
        # changes the database's signature (as a write would). Immutable opens no WAL and
        # takes no lock; a write meanwhile creates one, so the check ends "unsure".
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def compare(database: Path, copy: Path) -> tuple[str, ...]:
    """The tables (SCHEMA for the schema) whose content differs between two databases;
    ``database`` is only read."""
    connection = _open_live(database)
    try:
        live = digest(connection)
    finally:
        connection.close()
    connection = sqlite3.connect(copy, isolation_level=None)
    try:
        copied = digest(connection)
    finally:
        connection.close()
    return tuple(sorted(name for name in live.keys() | copied.keys() if live.get(name) != copied.get(name)))


def verify(database: Path, store_url: str, expected: list | None, scratch: Path | None = None) -> Verdict:
    """Is the copy at ``store_url`` (its replica) what ``database`` holds? ``expected``:
    the database's signature when it was let go; a different one before or after the
    comparison makes the answer UNSURE. ``scratch``: where the private restore goes."""
    # imported here: mirror_scale imports this one (cycle inside the app)
    from vouch.backups.mirror_scale import signature

    started = time.monotonic()

    def verdict(outcome: str, tables: tuple[str, ...] = (), detail: str = "") -> Verdict:
        return Verdict(outcome, tables, detail, (time.monotonic() - started) * 1000)

    if expected is None or signature(database) != expected:
        return verdict(UNSURE, detail="written since it was let go")
    work = Path(tempfile.mkdtemp(prefix=".vouch-verify-", dir=scratch))  # 0700
    try:
        copy = work / database.name
        try:
            restore.restore_copy(store_url, copy, what=str(database))
        except restore.MirrorUnreachable as exc:
            return verdict(FAILED, detail=str(exc))  # nothing known of the copy: no heal
        except restore.NoMirror as exc:
            return verdict(DIFFERENT, ("(no copy)",), str(exc))
        except restore.RestoreError as exc:
            # The store answers but the copy cannot be restored (or fails SQLite's
            # check): as wrong as a copy can be.
            return verdict(DIFFERENT, ("(no restore)",), str(exc))
        try:
            tables = compare(database, copy)
        except sqlite3.Error:
            if signature(database) == expected:
                raise
            # Opened immutable (it had no WAL), then written and checkpointed under us.
            return verdict(UNSURE, detail="written during the check")
        if signature(database) != expected:
            return verdict(UNSURE, detail="written during the check")
        return verdict(DIFFERENT, tables) if tables else verdict(SAME)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def heal_files(database: Path, replica_base: str) -> int:
    """Remove ``database``'s copy under ``replica_base`` and Litestream's local state for
    it (which would otherwise only add to the copy from where it believes it stands), so
    that its next registration uploads it whole. Only while Litestream does not hold it."""
    removed = 0
    meta = plan.meta_dir(database)
    if meta.exists():
        shutil.rmtree(meta)
        removed += 1
    return removed + purge.remove_copy(replica_base, database.name)


class Verifier:
    """The live set's checks: one at a time, in their own thread and queue, so a check
    never holds up a live database's sync or registration. :meth:`submit` and
    :meth:`collect` are called from the live set's thread; ``counters`` (its Counters)
    are updated there; ``wake`` tells that thread a verdict is waiting."""

    def __init__(self, counters, scratch: Path | None, wake: Callable[[], None]) -> None:
        self.counters = counters
        self.scratch = scratch  # where the restores go (None: the system's temporary directory)
        self._wake = wake
        self._pool: ThreadPoolExecutor | None = None
        self._queued: set[Path] = set()  # queued or under way
        self._verdicts: queue.Queue = queue.Queue()

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vouch-mirror-verify")

    def stop(self) -> None:
        """Drop the queued checks; wait for the one under way."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, database: Path, store_url: str, expected: list) -> None:
        if self._pool is None or database in self._queued:
            return  # a check queued already looks at the database as it will be then
        self._queued.add(database)
        self._pool.submit(self._run, database, store_url, expected)

    def _run(self, database: Path, store_url: str, expected: list) -> None:
        try:
            verdict = verify(database, store_url, expected, self.scratch)
        except Exception as exc:  # noqa: BLE001  (counted and logged by collect())
            verdict = Verdict(FAILED, detail=f"{type(exc).__name__}: {exc}")
        self._verdicts.put((database, verdict))
        self._wake()

    def collect(self) -> list[Path]:
        """Count and log the verdicts in; the databases whose copy was found different."""
        different: list[Path] = []
        counters = self.counters
        while True:
            try:
                database, verdict = self._verdicts.get_nowait()
            except queue.Empty:
                return different
            self._queued.discard(database)
            counters.verify_ms.append(verdict.ms)
            if verdict.outcome == SAME:
                counters.verified += 1
            elif verdict.outcome == UNSURE:
                counters.unsure += 1
            elif verdict.outcome == FAILED:
                counters.errors += 1
                counters.last_error = f"verify {database.name}: {verdict.detail}"
                log.warning("mirror: copy could not be checked", database=str(database), error=verdict.detail)
            else:
                counters.diverged += 1
                counters.last_error = f"verify {database.name}: copy differs in {', '.join(verdict.tables)}"
                log.error(
                    "mirror: copy differs from the database",
                    database=str(database),
                    tables=list(verdict.tables),
                    detail=verdict.detail,
                )
                different.append(database)
