"""Reading backup sets: list what a target holds, open one set, verify and extract it.

    info = latest_set(store, company_prefix(company_id))      # or list_sets(store, prefix)
    opened = open_set(store, info.location)                   # the manifest authenticated
    extracted = opened.extract(to_dir, progress=bar.update)   # every object verified

``extract`` writes ``database.sqlite3`` (or ``database.pgdump``, pg_dump's custom format,
for a PostgreSQL company or control database) and ``files/<name>`` (each file's stored
bytes, still encrypted with the company's data key as on disk) into ``to_dir``. Every
object's chunks authenticate and its size and SHA-256 match the manifest, or
``BackupDamaged`` names it and what it leaves behind is removed."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from vouch.backups.sets.format import (
    COMPANY,
    CONTROL,
    BackupDamaged,
    BackupIncomplete,
    Location,
    SetKeys,
    base_key,
    binding,
    decrypt_object,
    manifest_key,
    object_key,
    open_manifest,
    parse_location,
    stored_size,
)
from vouch.objectstore import ObjectMissing, Store

Progress = Callable[[int], object] | None


@dataclass(frozen=True)
class SetInfo:
    """A set as the target lists it (nothing decrypted)."""

    location: str
    scope: str
    company_id: uuid.UUID | None
    taken_at: datetime
    set_id: uuid.UUID
    size: int  # bytes in the target, manifest included
    objects: int
    complete: bool  # has its manifest
    modified: datetime | None = None  # when its last object was written


def list_sets(store: Store, prefix: str = "") -> list[SetInfo]:
    """Every set under ``prefix`` (``company_prefix(id)``, ``control_prefix()``, or ""
    for all), oldest first, complete or not. The target is the truth: this works with
    no control database at all."""
    groups: dict[str, list] = {}
    for info in store.list(prefix):
        if info.key.endswith("/manifest"):
            location = info.key.removesuffix("/manifest")
        elif "/objects/" in info.key:
            location = info.key.rsplit("/objects/", 1)[0]
        else:
            continue
        if parse_location(location):
            groups.setdefault(location, []).append(info)
    sets = []
    for location, infos in groups.items():
        parsed = parse_location(location)
        assert parsed is not None
        sets.append(
            SetInfo(
                location=location,
                scope=parsed.scope,
                company_id=parsed.company_id,
                taken_at=parsed.taken_at,
                set_id=parsed.set_id,
                size=sum(i.size for i in infos),
                objects=sum(1 for i in infos if "/objects/" in i.key),
                complete=any(i.key == manifest_key(location) for i in infos),
                modified=max(i.modified for i in infos),
            )
        )
    return sorted(sets, key=lambda s: (s.taken_at, s.location))


def latest_set(store: Store, prefix: str, at: datetime | None = None) -> SetInfo | None:
    """The newest complete set under ``prefix`` (taken at or before ``at``, if given)."""
    complete = [s for s in list_sets(store, prefix) if s.complete and (at is None or s.taken_at <= at)]
    return complete[-1] if complete else None


@dataclass(frozen=True)
class Extracted:
    database: Path  # database.sqlite3, or database.pgdump (pg_dump -Fc) for PostgreSQL
    files_dir: Path  # files/<name>: the stored (still data-key-encrypted) bytes
    manifest: dict


class OpenedSet:
    """One set whose manifest authenticated under this installation's key for it."""

    def __init__(self, store: Store, where: Location, manifest: dict, keys: SetKeys):
        self.store, self.where, self.manifest, self._keys = store, where, manifest, keys

    @property
    def location(self) -> str:
        return self.where.location

    @property
    def set_id(self) -> uuid.UUID:
        return self.where.set_id

    @property
    def scope(self) -> str:
        return self.where.scope

    @property
    def company_id(self) -> uuid.UUID | None:
        return self.where.company_id

    @property
    def taken_at(self) -> datetime:
        return self.where.taken_at

    @property
    def total_bytes(self) -> int:
        return sum(entry["size"] for entry in self.manifest["objects"])

    def _what(self, entry: dict) -> str:
        if entry["kind"] == "database":
            return f"object {entry['number']} (the database)"
        return f"object {entry['number']} (file {entry['name']})"

    def iter_object(self, entry: dict, progress: Progress = None) -> Iterator[bytes]:
        """The plaintext of one manifest entry, verified: every chunk authenticates, and
        at the end its size and SHA-256 match the manifest (else ``BackupDamaged``)."""
        number, what = entry["number"], self._what(entry)
        key = object_key(self.location, number)
        try:
            if self.store.size(key) != stored_size(entry["size"]):
                raise BackupDamaged(what, "its size in the target is not the size written (truncated or extended)")
            stored = self.store.open(key)
        except ObjectMissing:
            raise BackupDamaged(what, "missing from the target") from None
        hasher, size = hashlib.sha256(), 0
        for plain in decrypt_object(self._keys, self.set_id, number, stored, what):
            hasher.update(plain)
            size += len(plain)
            if progress:
                progress(len(plain))
            yield plain
        if size != entry["size"] or hasher.hexdigest() != entry["sha256"]:
            raise BackupDamaged(what, "its size or SHA-256 does not match the manifest")

    def extract(self, to_dir: Path | str, progress: Progress = None) -> Extracted:
        """Write the database and files into ``to_dir`` (made 0700 if missing), verified.
        On ``BackupDamaged`` the object being written is removed (the ones before it stay,
        verified)."""
        to_dir = Path(to_dir)
        to_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files_dir = to_dir / "files"
        dumped = self.manifest["database"]["kind"] == "pg_dump"
        database = to_dir / ("database.pgdump" if dumped else "database.sqlite3")
        for entry in self.manifest["objects"]:
            if entry["kind"] == "database":
                target = database
            else:
                target = files_dir / _safe_name(entry["name"], self._what(entry))
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temp = target.with_name(f".{target.name}.partial")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    for plain in self.iter_object(entry, progress):
                        out.write(plain)
                os.replace(temp, target)
            finally:
                temp.unlink(missing_ok=True)
        files_dir.mkdir(exist_ok=True, mode=0o700)
        return Extracted(database=database, files_dir=files_dir, manifest=self.manifest)

    def verify(self, progress: Progress = None) -> None:
        """Read every object and check it, writing nothing (``BackupDamaged`` names the first bad one)."""
        for entry in self.manifest["objects"]:
            for _ in self.iter_object(entry, progress):
                pass


def _safe_name(name: str, what: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise BackupDamaged(what, f"its file name {name!r} would leave the restore directory")
    return str(path)


def open_set(store: Store, location: str, *, region: str | None = None, key: bytes | None = None) -> OpenedSet:
    """Open the set at ``location`` in ``store``: read its manifest, authenticate it with
    this installation's key for the set's scope and company (or ``key``), and check it is
    the set its name says (company, time, set id; and ``region`` if given).

    Raises ``BackupIncomplete`` (no manifest), ``BackupDamaged`` (altered, truncated,
    swapped or renamed: refused), ``BackupKeyMissing`` (e.g. a purged company's)."""
    where = parse_location(location)
    if where is None:
        raise BackupDamaged(location, "not the name of a backup set (companies/<id>/<time>-<set id> or control/...)")
    try:
        sealed = store.get(manifest_key(where.location))
    except ObjectMissing:
        raise BackupIncomplete("manifest", f"set {where.location} has no manifest: it was never completed") from None
    expected = binding(where.scope, where.company_id, "", where.set_id, where.taken_at)
    expected.pop("region")
    whose = "the control database" if where.scope == CONTROL else f"company {where.company_id}"
    base = key if key is not None else base_key(where.scope, where.company_id)
    manifest, keys = open_manifest(base, sealed, expected, whose)
    if region is not None and manifest["region"] != region:
        raise BackupDamaged("manifest", f"the set is of region {manifest['region']!r}, not {region!r}; refused")
    if where.scope == COMPANY and manifest.get("company_id") != str(where.company_id):
        raise BackupDamaged("manifest", "its company id does not match its name")
    return OpenedSet(store, where, manifest, keys)
