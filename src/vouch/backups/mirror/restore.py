"""Bring a database back from the mirror, as of now or of a past moment.

:func:`restore_database` is the building block of ``vouch backup restore`` (from the
mirror) and of the runbooks: it runs ``litestream restore`` against the database's
copy in the mirror, into a new file, and checks the result before giving it back.
The live database is never touched; the caller decides what to do with the copy."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from vouch.backups.mirror import plan
from vouch.objectstore import StoreError, open_store

RESTORE_TIMEOUT_SECONDS = 3600


class RestoreError(Exception):
    """The restore did not happen; the message says why, in words for an operator."""


class NoMirror(RestoreError):
    """The mirror holds no copy of that database (yet)."""


class TooEarly(RestoreError):
    """The asked-for moment is before the oldest copy the mirror keeps."""


class MirrorUnreachable(RestoreError):
    """The mirror's store could not be read (down, or refused us): nothing is known of the copy."""


def _has_copy(url: str) -> bool:
    # Litestream's files: ltx/<level>/<txids>.ltx in a directory, <level as %04x>/... in S3.
    try:
        return any(info.key.endswith(".ltx") for info in open_store(url).list(""))
    except StoreError as exc:
        raise MirrorUnreachable(f"the mirror cannot be read: {exc}") from exc


def restore_database(source: Path, to: Path, at: datetime | None = None) -> Path:
    """Restore ``source`` (a live database's path: the control database or a company's
    file) from its mirror into ``to`` (which must not exist), as of ``at`` (default: the
    latest copy). Returns ``to``. Raises :class:`NoMirror`, :class:`TooEarly` or
    :class:`RestoreError`."""
    source, to = Path(source).resolve(), Path(to).resolve()
    try:
        item = plan.find(source)
    except plan.MirrorConfigError as exc:
        raise RestoreError(str(exc)) from exc
    return restore_copy(item.replica_url(source), to, at, what=str(source))


def restore_copy(url: str, to: Path, at: datetime | None = None, *, what: str | None = None) -> Path:
    """Restore the database whose copy is at store URL ``url`` (its replica: a directory
    or ``s3://`` URL holding Litestream's ``ltx`` files) into ``to``, as
    :func:`restore_database` does; ``what`` names it in messages (default: ``url``).
    Also used by the live set's check of a copy (vouch.backups.mirror_verify)."""
    what = what or url
    to = Path(to).resolve()
    if not _has_copy(url):
        raise NoMirror(f"the mirror has no copy of {what} (looked in {url})")
    if to.exists() or Path(f"{to}-wal").exists():
        raise RestoreError(f"{to} already exists; restore into a new path")
    to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written under a temporary name, renamed once complete and checked: ``to`` only
    # ever holds a whole database.
    partial = to.with_name(f".{to.name}.restoring")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    command = [str(plan.litestream_binary()), "restore", "-integrity-check", "quick", "-o", str(partial)]
    if at is not None:
        moment = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
        command += ["-timestamp", moment.isoformat().replace("+00:00", "Z")]
    command.append(plan.litestream_url(url))
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=RESTORE_TIMEOUT_SECONDS,
            check=False,
            env=plan.litestream_environment(),
        )
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise RestoreError(f"the restore of {what} took longer than {RESTORE_TIMEOUT_SECONDS} s") from exc
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        said = (result.stderr or result.stdout).strip().splitlines()
        said = said[-1] if said else f"exit {result.returncode}"  # type: ignore[assignment]  # typing debt
        if at is not None and ("timestamp does not exist" in said or "no matching backup files" in said):
            raise TooEarly(f"the mirror of {what} holds nothing as old as {at.isoformat()} ({said})")
        raise RestoreError(f"litestream could not restore {what}: {said}")
    os.chmod(partial, 0o600)
    _check(partial)
    os.replace(partial, to)
    return to


def _check(path: Path) -> None:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        connection.close()
    if verdict != "ok":
        path.unlink(missing_ok=True)
        raise RestoreError(f"the restored database failed SQLite's check: {verdict}")
