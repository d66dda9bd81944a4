"""``vouch backup restore``: a company (or the control database) from the mirror or a set.

    --to DIR      write a verified copy into DIR (database.sqlite3 or database.pgdump,
                  files/, restore.json): nothing live changes
    --in-place    replace the live company. Only that company goes offline
                  (vouch.tenancy.maintenance); the state it had is kept aside in a
                  rollback directory (printed); a security event is recorded in the
                  control database and an entry in the company's own activity log
    --rollback DIR  put back the state an in-place restore kept aside in DIR

An in-place restore first fetches and verifies the copy while the company is still
online, then takes it offline, keeps the live state aside, copies the restored database
into the live one (SQLite's backup API, through SQLite's locks: other processes' open
connections see the restored content, never a half-written file) and the files into
place, and brings it back online. Interrupted (a crash, a kill), the company stays
offline, and its offline reason (shown by the restore command and kept in the control
database) says how to finish (run the same command again) or roll back."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import structlog
from django.utils import timezone

from vouch import regions
from vouch.activity import services as activity
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.backups import checks, restore_files
from vouch.backups.sources import BadRequest, Fetched, RestoreError, check_identity, fetch_company, fetch_control
from vouch.config import DatabaseURL
from vouch.core.context import alias_for, company_context
from vouch.core.faults import pause
from vouch.tenancy import connections, maintenance, provisioning
from vouch.tenancy.models import Company, CompanyStatus
from vouch.tenancy.operations.report import find_company

log = structlog.get_logger(__name__)

ROLLBACK_MARK = "rollback directory: "
STATE_FILE = "restore.json"


def parse_at(text: str | None) -> datetime | None:
    """``--at``: ISO 8601; a time without a zone is UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"--at {text!r} is not a time (ISO 8601, e.g. 2026-12-01T14:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > timezone.now():
        raise BadRequest(f"--at {text!r} is in the future")
    return moment


def _progress_factory(show: bool):
    from tqdm import tqdm

    @contextlib.contextmanager
    def factory(total: int):
        with tqdm(total=total, disable=not show, file=sys.stderr, unit="B", unit_scale=True, desc="Restoring") as bar:
            yield bar.update

    return factory


def _write_state(directory: Path, **values) -> None:
    path = directory / STATE_FILE
    state = json.loads(path.read_text()) if path.exists() else {}
    state.update(values)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(state, indent=2, default=str))
    os.replace(temp, path)


def _describe(fetched: Fetched) -> dict:
    return {
        "source": fetched.source,
        "kind": fetched.kind,
        "set_id": str(fetched.set_id or ""),
        "taken_at": fetched.taken_at.isoformat() if fetched.taken_at else "",
        "location": fetched.location,
    }


# --- to a directory ---------------------------------------------------------------


def _empty_target(to: Path) -> Path:
    to = to.resolve()
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise BadRequest(f"{to} is not an empty directory; choose a new one")
    to.mkdir(parents=True, exist_ok=True, mode=0o700)
    return to


def restore_to(company, to: Path, *, at=None, set_id=None, progress: bool = False) -> Fetched:
    """A verified copy of ``company`` (None: the control database) written into ``to``."""
    to = _empty_target(to)
    try:
        if company is None:
            fetched = fetch_control(to, at=at, set_id=set_id, progress_factory=_progress_factory(progress))
        else:
            fetched = fetch_company(company, to, at=at, set_id=set_id, progress_factory=_progress_factory(progress))
    except BaseException:
        shutil.rmtree(to, ignore_errors=True)
        raise
    _write_state(to, company_id=str(company.pk) if company else "", restored_at=timezone.now(), **_describe(fetched))
    return fetched


# --- in place -----------------------------------------------------------------------


def rollback_root(region_name: str) -> Path:
    return regions.get(region_name).root / "restores"


def _interrupted_rollback_dir(company) -> Path | None:
    """The rollback directory of an interrupted restore of ``company``, if it is one."""
    reason = company.offline_reason or ""
    for line in reason.splitlines():
        if line.startswith(ROLLBACK_MARK):
            path = Path(line[len(ROLLBACK_MARK) :].strip())
            return path if path.is_dir() else None
    return None


def _offline_reason(company, rollback: Path, fetched: Fetched, command: str) -> str:
    return (
        f"In-place restore of company {company.pk} from {fetched.source}, started {timezone.now():%Y-%m-%d %H:%M:%S} "
        "UTC. If the company is still offline, the restore was interrupted. To finish it, run again:\n"
        f"  {command}\n"
        f"To put back the state from before the restore instead:\n"
        f"  vouch backup restore --company {company.pk} --rollback {rollback}\n"
        f"{ROLLBACK_MARK}{rollback}"
    )


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy database ``source`` into ``target`` (made if missing) through SQLite's backup
    API: ``target``'s other connections wait on its locks and then see the new content."""
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=60)
    try:
        src.backup(dst)
        dst.commit()
    finally:
        dst.close()
        src.close()


def _sqlite_swap(live: Path, restored: Path, keep: Path | None) -> None:
    """Replace ``live``'s content with ``restored``'s in one write transaction on ``live``
    (BEGIN IMMEDIATE: every other writer waits for it), having first copied the live state
    into ``keep`` (when given) under the same lock: no write can land between the copy
    kept aside and the swap, and none is lost (a writer still holding the company open
    waits, then writes on top of the restored state: see docs/backups.md)."""
    pause("restore_before_swap")  # tests only: a write here must end up in the kept copy
    connection = sqlite3.connect(live, timeout=60, isolation_level=None)
    try:
        connection.execute("ATTACH DATABASE ? AS restored", [f"{restored.as_uri()}?mode=ro"])
        connection.execute("BEGIN IMMEDIATE")
        try:
            if keep is not None:
                # A second connection reads the committed state (writers are held off by
                # this one's lock; readers are not).
                _sqlite_copy(live, keep)
            _replace_content(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    finally:
        connection.close()


def _replace_content(connection: sqlite3.Connection) -> None:
    """Inside the caller's transaction: drop every object of ``main`` and recreate them
    (the restored schema, which may be an older migration state) with the rows of the
    attached ``restored``."""

    def objects(schema: str) -> list[tuple[str, str, str]]:
        return connection.execute(
            f"SELECT type, name, sql FROM {schema}.sqlite_master "  # noqa: S608 (schema names are ours)
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        ).fetchall()

    live = objects("main")
    for kind in ("view", "trigger", "table"):  # indexes go with their tables
        for object_kind, name, _ in live:
            if object_kind == kind:
                connection.execute(f"DROP {kind.upper()} IF EXISTS main.{_quoted(name)}")
    wanted = objects("restored")
    for kind, name, sql in wanted:
        if kind == "table":
            connection.execute(sql)  # unqualified: created in main
            connection.execute(f"INSERT INTO main.{_quoted(name)} SELECT * FROM restored.{_quoted(name)}")  # noqa: S608
    for kind, _, sql in wanted:
        if kind in ("index", "view", "trigger"):
            connection.execute(sql)
    sequences = "SELECT 1 FROM {}.sqlite_master WHERE name = 'sqlite_sequence'"
    if connection.execute(sequences.format("main")).fetchone():
        connection.execute("DELETE FROM main.sqlite_sequence")
        if connection.execute(sequences.format("restored")).fetchone():
            connection.execute("INSERT INTO main.sqlite_sequence SELECT * FROM restored.sqlite_sequence")
    version = connection.execute("PRAGMA restored.user_version").fetchone()[0]
    connection.execute(f"PRAGMA main.user_version = {int(version)}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _integrity(database: Path) -> str:
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])


def _keep_aside(company, rollback: Path) -> None:
    """The live database and files, into ``rollback`` (once: an interrupted restore run
    again must not keep aside its own half-restored state)."""
    region = regions.get(company.region)
    state = json.loads((rollback / STATE_FILE).read_text()) if (rollback / STATE_FILE).exists() else {}
    if state.get("kept"):
        return
    if region.uses_postgresql:
        # Kept by renaming it at the swap (_postgres_swap); nothing to keep if it is lost.
        _write_state(rollback, database=_postgres_keep_name(company.pk) if _postgres_exists(company) else "")
    # On SQLite the database is kept aside at the swap, under its write lock (_put_database).
    restore_files.keep_aside(company, rollback / "files")
    _write_state(rollback, kept=True)


def _put_files(source: Path | None, company) -> None:
    restore_files.put(source, company)


def _put_database(company, database: Path, rollback: Path) -> None:
    region = regions.get(company.region)
    connections.release(alias_for(company.pk))
    if region.uses_postgresql:
        _postgres_swap(company, rollback)
        return
    live = connections.sqlite_path(company.pk, region)
    kept = rollback / "database.sqlite3"
    if not live.exists():
        _sqlite_copy(database, live)  # lost (a disk failure): nothing to keep aside
    else:
        # Kept aside once: a restore run again after an interruption keeps the first copy.
        _sqlite_swap(live, database, None if kept.exists() else kept)
    problem = _integrity(live)
    if problem != "ok":
        raise RestoreError(f"the restored database failed SQLite's integrity check: {problem}")
    check_identity(live, company.pk)


def restore_in_place(
    company, *, at=None, set_id=None, progress: bool = False, command: str = ""
) -> tuple[Fetched, Path]:
    """Replace ``company``'s database and files with a verified copy; returns the copy's
    description and the rollback directory."""
    company = Company.objects.get(pk=company.pk)
    resuming = _interrupted_rollback_dir(company) if company.is_offline else None
    if company.is_offline and resuming is None:
        raise BadRequest(f"company {company.pk} is offline for maintenance already:\n{company.offline_reason}")
    rollback = resuming or (rollback_root(company.region) / f"{company.pk}-{timezone.now():%Y%m%dT%H%M%SZ}")
    rollback.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Fetched and verified while the company is still online: offline only for the swap.
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=rollback.parent))
    try:
        try:
            fetched = fetch_company(
                company, staging, at=at, set_id=set_id, progress_factory=_progress_factory(progress)
            )
            if regions.get(company.region).uses_postgresql:
                # Restored into a database of its own and checked while the company is
                # online: offline only for the renames.
                _postgres_prepare(company, fetched.database)
        except BaseException:
            if resuming is None:
                shutil.rmtree(rollback, ignore_errors=True)  # nothing was kept aside yet
            raise
        _write_state(rollback, company_id=str(company.pk), started_at=timezone.now(), **_describe(fetched))
        reason = _offline_reason(company, rollback, fetched, command or _replay_command(company, at, set_id))
        if resuming is None:
            maintenance.take_offline(company.pk, reason)
            print(f"Company {company.pk} is offline for the restore. {reason}", file=sys.stderr, flush=True)
            _record(company, "started", fetched, rollback)
        else:
            maintenance.set_reason(company.pk, reason)
        _keep_aside(company, rollback)
        _put_database(company, fetched.database, rollback)
        _put_files(fetched.files_dir, company)
        _write_state(rollback, finished_at=timezone.now())
        _record(company, "done", fetched, rollback)
        maintenance.bring_online(company.pk)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return fetched, rollback


def rollback_in_place(company, directory: Path) -> None:
    """Put back the database and files an in-place restore kept aside in ``directory``."""
    directory = directory.resolve()
    state_path = directory / STATE_FILE
    if not state_path.exists():
        raise BadRequest(f"{directory} is not a rollback directory (it has no {STATE_FILE})")
    state = json.loads(state_path.read_text())
    if state.get("company_id") != str(company.pk):
        raise BadRequest(f"{directory} holds company {state.get('company_id')}'s state, not {company.pk}'s; refused")
    if not state.get("kept"):
        raise BadRequest(f"{directory}: the restore stopped before keeping anything aside; nothing to put back")
    company = Company.objects.get(pk=company.pk)
    if not company.is_offline:
        maintenance.take_offline(company.pk, f"Rolling back a restore from {directory}")
    region = regions.get(company.region)
    if region.uses_postgresql:
        if not state.get("database"):
            raise BadRequest(f"{directory}: the company had no database when it was restored; nothing to put back")
        _postgres_rollback(company, state["database"])
    else:
        kept = directory / "database.sqlite3"
        check_identity(kept, company.pk)
        live = connections.sqlite_path(company.pk, region)
        if live.exists():
            _sqlite_swap(live, kept, None)
        else:
            _sqlite_copy(kept, live)
    _put_files(directory / "files", company)
    _write_state(directory, rolled_back_at=timezone.now())
    _record(company, "rolled_back", None, directory)
    maintenance.bring_online(company.pk)


def _record(company, phase: str, fetched: Fetched | None, rollback: Path) -> None:
    """A security event in the control database; once restored, an entry in the company's
    own activity log (in the restored database, so it says what happened to it)."""
    action = {
        "started": EventAction.DATA_RESTORE_STARTED,
        "done": EventAction.DATA_RESTORED,
        "rolled_back": EventAction.DATA_RESTORE_ROLLED_BACK,
    }[phase]
    details = {"rollback": rollback.name}
    if fetched is not None:
        details |= {"source": fetched.kind, "set": str(fetched.set_id or ""), "at": str(fetched.taken_at or "")}
    record(action, company=company.pk, target=f"company:{company.pk}", details=details)
    if phase == "started":
        return
    kind = activity.Kind.DATA_RESTORED if phase == "done" else activity.Kind.DATA_RESTORE_ROLLED_BACK
    summary = (
        f"Company data restored from {fetched.source}" if fetched else "A restore was rolled back to the earlier state"
    )
    with company_context(company, offline_ok=True):
        activity.log(kind, summary, details={"source": fetched.kind if fetched else "rollback"})


# --- PostgreSQL -------------------------------------------------------------------


def _pg_name(base: str, suffix: str) -> str:
    """PostgreSQL cuts names at 63 bytes: keep the suffix whole (and so the names distinct)."""
    return base[: 63 - len(suffix)] + suffix


def _postgres_keep_name(company_id) -> str:
    return _pg_name(connections.postgres_name(company_id), f"_kept_{timezone.now():%y%m%d%H%M%S}")


def _postgres_fresh_name(company_id) -> str:
    return _pg_name(connections.postgres_name(company_id), "_restoring")


def _postgres_exists(company, name: str | None = None) -> bool:
    with provisioning._admin(regions.get(company.region)) as admin:
        name = name or connections.postgres_name(company.pk)
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _pg_env(region: regions.Region) -> dict:
    server = cast(DatabaseURL, region.server)  # a PostgreSQL region (server set)
    env = dict(os.environ)
    env.update({"PGHOST": server.host or "", "PGPORT": str(server.port or ""), "PGUSER": server.user or ""})
    if server.password:
        env["PGPASSWORD"] = server.password
    return env


def pg_restore_into(region: regions.Region, dump: Path, database: str) -> None:
    """Create ``database`` on the region's server and pg_restore ``dump`` into it."""
    import subprocess

    with provisioning._admin(region) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    result = subprocess.run(
        ["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "-d", database, str(dump)],
        env=_pg_env(region),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        with provisioning._admin(region) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        raise RestoreError(f"pg_restore failed: {result.stderr.strip()[-500:]}")


def _postgres_prepare(company, dump: Path) -> None:
    """The dump restored into ``<live>_restoring`` and its identity row checked: a copy
    of another company never goes live."""
    region = regions.get(company.region)
    fresh = _postgres_fresh_name(company.pk)
    with provisioning._admin(region) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
    pg_restore_into(region, dump, fresh)
    try:
        with provisioning._admin(region, dbname=fresh) as connection:
            checks.identity(connection.cursor(), company.pk)
    except checks.CheckFailed as exc:
        with provisioning._admin(region) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        raise RestoreError(f"{exc.message}: wrong company, refused", what="the database") from None


def _postgres_swap(company, rollback: Path) -> None:
    """The live database renamed aside (the name in the rollback state), the prepared one
    renamed to the live name. Run again after an interruption: a live database present
    while the kept one exists already is the half-restored state, and is dropped."""
    region = regions.get(company.region)
    live = connections.postgres_name(company.pk)
    fresh = _postgres_fresh_name(company.pk)
    kept = json.loads((rollback / STATE_FILE).read_text()).get("database")
    with provisioning._admin(region) as admin:

        def exists(name: str) -> bool:
            return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None

        if not exists(fresh):
            raise RestoreError(f"the prepared database {fresh} is missing; run the restore again")
        if exists(live):
            if kept and not exists(kept):
                _rename_in_use(admin, live, kept)
            else:
                admin.execute(f'DROP DATABASE "{live}" WITH (FORCE)')
        admin.execute(f'ALTER DATABASE "{fresh}" RENAME TO "{live}"')
    provisioning.ensure_role(company.pk, company.region)


def _rename_in_use(admin, name: str, to: str, attempts: int = 20) -> None:
    """Rename a database other sessions may hold (other processes' kept connections):
    they are ended first; one that reconnects in between is ended again."""
    import psycopg

    for attempt in range(attempts):
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        try:
            admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{to}"')
            return
        except psycopg.errors.ObjectInUse:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _postgres_rollback(company, kept: str) -> None:
    region = regions.get(company.region)
    live = connections.postgres_name(company.pk)
    with provisioning._admin(region) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{live}" WITH (FORCE)')
        admin.execute(f'ALTER DATABASE "{kept}" RENAME TO "{live}"')
    provisioning.ensure_role(company.pk, company.region)


# --- the command ------------------------------------------------------------------


def _find_company(key: str):
    try:
        company = find_company(key)
    except LookupError as exc:
        raise BadRequest(str(exc)) from None
    if company.status == CompanyStatus.DELETED:
        raise BadRequest(f"company {company.pk} was deleted; its backups cannot be opened (by design)")
    return company


def cli_restore(args: argparse.Namespace, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    show = err.isatty() if args.progress is None else args.progress
    try:
        at = parse_at(args.at)
        if args.control:
            if getattr(args, "in_place", False) or getattr(args, "rollback", None):
                raise BadRequest(
                    "the control database is restored --to a directory, then put in place by the runbook "
                    "(docs/backups.md, Restore)"
                )
            fetched = restore_to(None, Path(args.to), at=at, set_id=args.set, progress=show)
            print(f"Restored the control database from {fetched.source} into {Path(args.to).resolve()}.", file=out)
            head = (fetched.manifest.get("chain_head") or {}).get("hash")
            if head:
                print(f"Its security log head: {head} (check with `vouch audit verify --expect-head`).", file=out)
            return 0
        company = _find_company(args.company)
        if getattr(args, "rollback", None):
            rollback_in_place(company, Path(args.rollback))
            print(f"Company {company.pk} is back to the state kept in {args.rollback}, and online.", file=out)
            return 0
        if args.to:
            fetched = restore_to(company, Path(args.to), at=at, set_id=args.set, progress=show)
            print(f"Restored company {company.pk} from {fetched.source} into {Path(args.to).resolve()}.", file=out)
            return 0
        # Run again after an interruption, the restore must fetch the same state: the
        # mirror's "latest" would by then include the half-restored database.
        at = at or (None if args.set else timezone.now().replace(microsecond=0))
        command = _replay_command(company, at, args.set)
        fetched, rollback = restore_in_place(company, at=at, set_id=args.set, progress=show, command=command)
        print(
            f"Restored company {company.pk} in place from {fetched.source}; it is online again.\n"
            f"The state it had before is kept in {rollback} "
            f"(`vouch backup restore --company {company.pk} --rollback {rollback}` puts it back).",
            file=out,
        )
        return 0
    except maintenance.AlreadyOffline as exc:
        print(f"Refused: the company is offline for maintenance already:\n{exc}", file=err)
        return 2
    except RestoreError as exc:
        print(f"Restore failed: {exc}", file=err)
        return exc.exit_code


def _replay_command(company, at, set_id) -> str:
    """The command that finishes an interrupted in-place restore: the same copy again."""
    parts = ["vouch backup restore", "--company", str(company.pk)]
    if set_id:
        parts += ["--set", str(set_id)]
    elif at:
        parts += ["--at", at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return " ".join([*parts, "--in-place"])
