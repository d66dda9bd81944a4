"""Where a restore comes from: the continuous mirror (a point in time) or a backup set.

:func:`fetch_company` and :func:`fetch_control` write a verified copy (database and, for
a company, its encrypted files) into a staging directory and say where it came from.
Nothing here touches the live data: ``vouch.backups.restore`` puts a copy in place,
``vouch.backups.drills`` checks one.

Errors are :class:`RestoreError` with a message for the operator and the exit code of
the command (2: the request cannot be served as asked, e.g. no backup at that time or a
set of another company; 1: the backup itself failed, e.g. damaged or its key missing)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from vouch import regions
from vouch.backups import restore_files
from vouch.backups.sets import company_target, control_target, reader
from vouch.backups.sets import format as set_format
from vouch.objectstore import StoreError, open_store
from vouch.tenancy import connections

log = structlog.get_logger(__name__)

Progress = Callable[[int], object] | None


class RestoreError(Exception):
    """A restore (or drill) could not be done; the message is for the operator."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None, what: str = ""):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        self.what = what  # the damaged object, when there is one


class BadRequest(RestoreError):
    """Not servable as asked (no backup at that time, a set of another company...)."""

    exit_code = 2


@dataclass
class Fetched:
    """A verified copy in a staging directory."""

    database: Path  # database.sqlite3, or database.pgdump (pg_dump -Fc) on PostgreSQL
    files_dir: Path | None  # the company's files (still encrypted with its data key)
    manifest: dict = field(default_factory=dict)  # the set's manifest; {} from the mirror
    source: str = ""  # for people: "backup set <id> taken <time>" / "mirror at <time>"
    kind: str = "set"  # "set" or "mirror"
    set_id: uuid.UUID | None = None
    taken_at: datetime | None = None
    location: str = ""


def backup_store(region_name: str | None):
    """The backup target of a region (None: the control database's), as the writer uses it."""
    return open_store(control_target() if region_name is None else company_target(region_name))


def _sets():
    return set_format, reader


def _find_set(store, prefix: str, set_id: str | None, at: datetime | None, whose: str):
    set_format, reader = _sets()
    try:
        if set_id:
            try:
                wanted = uuid.UUID(set_id)
            except ValueError:
                raise BadRequest(f"--set {set_id!r} is not a backup set id (see `vouch backup list`)") from None
            for info in reader.list_sets(store, prefix):
                if info.set_id == wanted:
                    if not info.complete:
                        raise RestoreError(f"backup set {wanted} was never completed (it has no manifest)")
                    return info
            # Say whose it is when it is another company's: the usual mistake.
            for info in reader.list_sets(store, ""):
                if info.set_id == wanted:
                    other = f"company {info.company_id}" if info.company_id else "the control database"
                    raise BadRequest(f"backup set {wanted} belongs to {other}, not to {whose}; refused")
            raise BadRequest(f"no backup set {wanted} of {whose} in {store.describe()}")
        info = reader.latest_set(store, prefix, at)
    except StoreError as exc:
        raise RestoreError(f"the backup target cannot be read: {exc}") from exc
    if info is None:
        when = f" taken at or before {at:%Y-%m-%d %H:%M:%S} UTC" if at else ""
        raise BadRequest(f"no backup of {whose}{when} in {store.describe()}")
    return info


def _extract(store, info, to: Path, *, region: str | None, progress_factory) -> Fetched:
    set_format, reader = _sets()
    try:
        opened = reader.open_set(store, info.location, region=region)
        with progress_factory(opened.total_bytes) as progress:
            extracted = opened.extract(to, progress=progress)
    except set_format.BackupKeyMissing as exc:
        raise RestoreError(f"cannot open backup set {info.set_id}: {exc}") from exc
    except set_format.BackupDamaged as exc:
        raise RestoreError(
            f"backup set {info.set_id} ({info.location}) is damaged: {exc}; nothing was restored from it",
            what=exc.what,
        ) from exc
    except StoreError as exc:
        raise RestoreError(f"the backup target cannot be read: {exc}") from exc
    return Fetched(
        database=extracted.database,
        files_dir=extracted.files_dir,
        manifest=extracted.manifest,
        source=f"backup set {info.set_id} taken {info.taken_at:%Y-%m-%d %H:%M:%S} UTC",
        kind="set",
        set_id=info.set_id,
        taken_at=info.taken_at,
        location=info.location,
    )


def _no_progress(total: int):
    import contextlib

    return contextlib.nullcontext(None)


def fetch_company(
    company,
    to: Path,
    *,
    at: datetime | None = None,
    set_id: str | None = None,
    use_mirror: bool = True,
    progress_factory=_no_progress,
) -> Fetched:
    """A verified copy of ``company`` (a tenancy Company) in ``to``: from the mirror at
    ``at`` (the embedded default, unless a set is named), else the latest set taken at
    or before ``at``, or the set ``set_id``."""
    region = regions.get(company.region)
    whose = f"company {company.pk}"
    if use_mirror and not set_id and not region.uses_postgresql:
        fetched = _from_mirror(company, region, to, at)
        if fetched is not None:
            return fetched
    store = backup_store(company.region)
    set_format, _ = _sets()
    info = _find_set(store, set_format.company_prefix(company.pk), set_id, at, whose)
    fetched = _extract(store, info, to, region=company.region, progress_factory=progress_factory)
    check_identity(fetched.database, company.pk)
    return fetched


def fetch_control(to: Path, *, at: datetime | None = None, set_id: str | None = None, progress_factory=_no_progress):
    store = backup_store(None)
    set_format, _ = _sets()
    info = _find_set(store, set_format.control_prefix(), set_id, at, "the control database")
    return _extract(store, info, to, region=None, progress_factory=progress_factory)


def _from_mirror(company, region: regions.Region, to: Path, at: datetime | None) -> Fetched | None:
    """The company's database from the continuous mirror at ``at`` (its files are the
    live ones: files are written once under new names, and the mirror holds databases
    only). None when the mirror cannot serve it (off, not yet caught up, ``at`` before
    its retention): then a backup set does."""
    try:
        # imported here: the mirror is an optional part (no mirror: a backup set serves)
        from vouch.backups import mirror
    except ImportError:
        return None
    restore_database = getattr(mirror, "restore_database", None)
    if restore_database is None:
        return None
    live = connections.sqlite_path(company.pk, region)
    to.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = to / "database.sqlite3"
    try:
        restored = Path(restore_database(live, database, at))
    except Exception as exc:  # noqa: BLE001 - whatever the mirror says, a set may still serve
        log.info("mirror cannot serve the restore; using a backup set", company=str(company.pk), error=str(exc))
        database.unlink(missing_ok=True)
        return None
    if restored != database:
        shutil.move(restored, database)
    files_dir = to / "files"
    restore_files.copy_live(company, files_dir)
    check_identity(database, company.pk)
    when = f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "the latest point"
    return Fetched(database=database, files_dir=files_dir, source=f"mirror at {when}", kind="mirror", taken_at=at)


def recorded_company(database: Path) -> str | None:
    """The company id a SQLite company database records (tenancy's identity row)."""
    try:
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        rows = connection.execute(f"SELECT company_id FROM {connections.IDENTITY_TABLE}").fetchall()  # noqa: S608
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return rows[0][0] if len(rows) == 1 else None


def check_identity(database: Path, company_id) -> None:
    """Refuse a copy that is not this company's database (a swapped or mislabelled one)."""
    if database.suffix != ".sqlite3":
        return  # a pg_dump is checked once restored into a scratch database
    found = recorded_company(database)
    if found != str(uuid.UUID(str(company_id))):
        raise RestoreError(
            f"the restored database records company {found!r}, not {company_id}: wrong company, refused",
            what="the database",
        )
