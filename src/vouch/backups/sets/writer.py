"""Taking a backup set: snapshot, encrypt into the spool, upload, manifest last.

Every set is first written whole, already encrypted, into a private spool directory
(``VOUCH_DATA_DIR/backup-spool/<set id>``, 0700); then its objects are uploaded and its
manifest last. If the target is unreachable the set stays there, ``pending``, and
:func:`upload` is tried again later (vouch.backups.sets.schedule): nothing is lost while
a target is down, and nothing in the spool is readable without the keys.

Each attempt is a ``BackupSet`` row in the control database (pending, complete, failed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

import structlog
from django.conf import settings
from django.utils import timezone

from vouch import regions
from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.backups.models import BackupSet, BackupStatus, Scope
from vouch.backups.sets import snapshot
from vouch.backups.sets.format import (
    COMPANY,
    CONTROL,
    Digest,
    base_key,
    binding,
    encrypt_object,
    location_for,
    manifest_key,
    new_set_keys,
    object_key,
    seal_with,
    set_time,
)
from vouch.objectstore import StoreUnavailable, join, open_store

log = structlog.get_logger(__name__)

Progress = Callable[[int], object] | None


def spool_root() -> Path:
    root = Path(settings.DATA_DIR) / "backup-spool"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
    return root


def spool_dir(set_id) -> Path:
    return spool_root() / str(set_id)


def company_target(region_name: str) -> str:
    """A company's backups go to its own region's target, and nowhere else."""
    url = regions.get(region_name).backup_url
    if not url:
        raise ValueError(f"region {region_name} has no backup target (VOUCH_REGION_{region_name.upper()}_BACKUP_URL)")
    return url


def control_target() -> str:
    return join(settings.VOUCH_BACKUP_URL, "control")


def _write_private(path: Path, chunks: Iterable[bytes]) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    # Not synced here: most sets leave the spool at once. One that has to wait is synced
    # then (_keep); one cut short by a crash before that fails authentication if read.
    return size


def _keep(spool: Path) -> None:
    """Make a set that waits for its target durable in the spool."""
    for path in [*spool.rglob("*"), spool]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _counting(chunks: Iterable[bytes], progress: Progress) -> Iterator[bytes]:
    for chunk in chunks:
        if progress:
            progress(len(chunk))
        yield chunk


def write_company_set(company, *, now: datetime | None = None, upload_now: bool = True, progress: Progress = None):
    """Take one set of ``company`` (its database and files) into its region's target.
    Returns the ``BackupSet`` row: complete, pending (target down; kept in the spool and
    retried), or failed (``error`` says why; a security event is recorded)."""
    return _take(
        scope=COMPANY,
        company_id=company.pk,
        region=company.region,
        target=company_target(company.region),
        snapshot_of=lambda spool: snapshot.company_snapshot(company.pk, company.region, spool),
        files=lambda: snapshot.company_files(company.pk, company.region),
        now=now,
        upload_now=upload_now,
        progress=progress,
    )


def write_control_set(*, now: datetime | None = None, upload_now: bool = True, progress: Progress = None):
    """Take one set of the control database into ``VOUCH_BACKUP_URL/control``."""
    return _take(
        scope=CONTROL,
        company_id=None,
        region="",
        target=control_target(),
        snapshot_of=snapshot.control_snapshot,
        files=lambda: iter(()),
        now=now,
        upload_now=upload_now,
        progress=progress,
    )


def _take(*, scope, company_id, region, target, snapshot_of, files, now, upload_now, progress) -> BackupSet:
    set_id = uuid.uuid4()
    taken_at = set_time(now or timezone.now())
    location = location_for(scope, company_id, taken_at, set_id)
    row = BackupSet.objects.create(
        id=set_id,
        scope=Scope.COMPANY if scope == COMPANY else Scope.CONTROL,
        company_id=company_id,
        region=region,
        taken_at=taken_at,
        status=BackupStatus.PENDING,
        target=target,
        location=location,
    )
    spool = spool_dir(set_id)
    try:
        spool.mkdir(mode=0o700)
        (spool / "objects").mkdir(mode=0o700)
        bound = binding(scope, company_id, region, set_id, taken_at)
        salt, keys = new_set_keys(base_key(scope, company_id), bound)
        entries, stored = [], 0
        with snapshot_of(spool) as (kind, facts, chunks):
            digest = Digest()
            stored += _write_private(spool / "objects" / "0", encrypt_object(keys, set_id, 0, chunks, digest))
            entries.append({"number": 0, "kind": "database", "size": digest.size, "sha256": digest.sha256})
        for name, opener in files():
            number = len(entries)
            digest = Digest()
            try:
                source = opener()
                stored += _write_private(
                    spool / "objects" / str(number), encrypt_object(keys, set_id, number, source, digest)
                )
            except FileNotFoundError:
                # Deleted since it was listed (its row is gone from a later snapshot too).
                (spool / "objects" / str(number)).unlink(missing_ok=True)
                continue
            entry = {"number": number, "kind": "file", "name": name, "size": digest.size, "sha256": digest.sha256}
            entries.append(entry)
        manifest = bound | {
            "database": {"kind": kind},
            "objects": entries,
            "row_counts": facts.row_counts,
            "migrations": facts.migrations,
            "schema_version": snapshot.schema_version(facts.migrations),
            "chain_head": facts.chain_head,
            "files": len(entries) - 1,
            "total_bytes": sum(e["size"] for e in entries),  # type: ignore[misc]  # typing debt
        }
        sealed = seal_with(keys, bound, salt, manifest)
        stored += _write_private(spool / "manifest", [sealed])
        # The spool is complete: from here on the set is only waiting for its target.
        row.size_bytes = stored
        row.schema_version = manifest["schema_version"]
        row.save(update_fields=["size_bytes", "schema_version"])
    except Exception as exc:  # noqa: BLE001  (any failure is recorded; the round goes on)
        shutil.rmtree(spool, ignore_errors=True)
        fail(row, f"snapshot failed: {exc}")
        return row
    if upload_now:
        with contextlib.suppress(StoreUnavailable):  # pending, kept in the spool: retried later
            upload(row, progress=progress)
    else:  # its target already failed in this round: straight to waiting
        _keep(spool)
        row.error = "target unavailable (it failed earlier in this round); waiting to be retried"
        row.save(update_fields=["error"])
    return row


def fail(row: BackupSet, error: str) -> None:
    row.status = BackupStatus.FAILED
    row.error = error[:2000]
    row.finished_at = timezone.now()
    row.save(update_fields=["status", "error", "finished_at"])
    log.warning("backup failed", scope=row.scope, company=str(row.company_id or ""), error=error)
    record(
        EventAction.BACKUP_FAILED,
        company=row.company_id,
        target=f"backup:{row.pk}",
        outcome=Outcome.FAILURE,
        details={"scope": row.scope, "region": row.region, "error": error[:200]},
    )


def upload(row: BackupSet, *, store=None, progress: Progress = None) -> BackupSet:
    """Upload a spooled set: its objects, then its manifest. ``StoreUnavailable`` leaves
    it pending (the error kept, the spool intact) for the next try."""
    spool = spool_dir(row.pk)
    if not (spool / "manifest").exists():
        fail(row, "its spool directory is gone; the set cannot be uploaded")
        return row
    row.attempts += 1
    try:
        store = store or open_store(row.target)
        objects = sorted((spool / "objects").iterdir(), key=lambda p: int(p.name))
        for path in objects:
            store.put(object_key(row.location, int(path.name)), _counting(snapshot.read_file(path), progress))
        # Last: a set is complete (and listed as such) only once all its objects are there.
        store.put_file(manifest_key(row.location), spool / "manifest")
    except StoreUnavailable as exc:
        _keep(spool)
        row.error = f"target unavailable: {exc}"[:2000]
        row.save(update_fields=["attempts", "error"])
        log.warning("backup target unavailable; set kept for retry", set=str(row.pk), error=str(exc))
        raise
    row.status = BackupStatus.COMPLETE
    row.error = ""
    row.finished_at = timezone.now()
    row.save(update_fields=["attempts", "status", "error", "finished_at"])
    shutil.rmtree(spool, ignore_errors=True)
    return row
