"""Keys kept only in the key store (``VOUCH_KEYS_DIR``), never in a database.

Two kinds live here, each a small JSON file (0600) holding the key wrapped by the
master key provider (AES-256-GCM, the key's identity as associated data), so the
directory alone, or a copy of it, opens nothing:

    companies/<company uuid>.kek   a company's key-encryption key (KEK): the inner
                                   wrapping of its data and index keys (vault.keyring)
                                   and the root of its backup key (vault.backup_keys)
    backup-control.key             the key of the control database's backups

Purging a company destroys its KEK file and leaves ``companies/<uuid>.purged`` (a
tombstone, no key material): a control database restored from before the purge still
holds the company's wrapped key rows, but without the KEK they open nothing, and the
tombstone makes Vouch refuse the company's keys, old-format rows included, and refuse
to make it a new KEK.

A provider may keep company KEKs itself (a KMS adapter: one KMS key per company) by
defining ``create_company_kek``, ``load_company_kek`` and ``destroy_company_kek`` (see
``CompanyKeyStore``); otherwise the files above are used, wrapped by that provider.
Files are written under a temporary name, flushed to disk, then linked or renamed into
place, and the directory is synced: a crash leaves the old file or the new one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Protocol, runtime_checkable

from django.conf import settings

from vouch.vault import providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError, KeyUnavailable

FORMAT = 1
KEY_BYTES = 32
COMPANIES = "companies"
KEK_SUFFIX = ".kek"
TOMBSTONE_SUFFIX = ".purged"
CONTROL_BACKUP_FILE = "backup-control.key"


@runtime_checkable
class CompanyKeyStore(Protocol):
    """Where company KEKs live. A provider defining these three methods keeps them
    itself; e.g. a KMS adapter creates one KMS key per company, stores the KEK
    encrypted under it (anywhere: without the KMS key the blob is useless), decrypts it
    in ``load`` and schedules the KMS key's deletion in ``destroy``."""

    def create_company_kek(self, company_id: uuid.UUID) -> bytes:
        """A new random 32-byte KEK for the company, stored; returned. Refuses
        (``KeyConfigurationError``) if the company already has one."""

    def load_company_kek(self, company_id: uuid.UUID) -> bytes:
        """The company's KEK; ``KeyUnavailable`` if it has none (destroyed, never
        made), ``DecryptionError`` if what is stored is not this company's."""

    def destroy_company_kek(self, company_id: uuid.UUID) -> bool:
        """Destroy the KEK for good; True if there was one. Idempotent."""


def _as_uuid(company_id) -> uuid.UUID:
    return company_id if isinstance(company_id, uuid.UUID) else uuid.UUID(str(company_id))


def keys_dir() -> Path:
    return Path(settings.VOUCH_KEYS_DIR)


def companies_dir() -> Path:
    return keys_dir() / COMPANIES


# --- wrapped key files ------------------------------------------------------------------


def _sync_dir(directory: Path) -> None:
    """Make a name added, renamed or removed in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = directory.stat()
    if info.st_mode & 0o077:
        raise KeyConfigurationError(
            f"{directory} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"Vouch refuses to use it. Run: chmod 0700 {directory}"
        )
    return directory


def write_file(path: Path, text: str, *, replace: bool) -> bool:
    """Write ``text`` as ``path`` (0600) atomically: a temporary file, flushed to disk,
    then linked into place (False if the name exists: someone else made it first) or,
    with ``replace``, renamed over it."""
    directory = _private_dir(path.parent)
    temp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
    finally:
        temp.unlink(missing_ok=True)
    _sync_dir(directory)
    return True


def read_file(path: Path) -> str:
    """A key file's text (``FileNotFoundError`` if there is none). A symbolic link, or
    a file others may read, is refused: the key must be this store's own file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise KeyConfigurationError(f"Cannot read key file {path}: {exc.strerror or exc}.") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & 0o077:
            raise KeyConfigurationError(
                f"{path} is open to other users (mode {stat.S_IMODE(mode):04o}); Vouch refuses to use it. "
                f"Run: chmod 0600 {path}"
            )
        data = handle.read()
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise DecryptionError(f"key file {path} is malformed (not text)") from None


def encode(fields: dict, version: int, wrapped: bytes) -> str:
    return (
        json.dumps(
            fields | {"format": FORMAT, "master_version": version, "wrapped": base64.b64encode(wrapped).decode()}
        )
        + "\n"
    )


def _decode(text: str, path: Path) -> tuple[dict, int, bytes]:
    try:
        fields = json.loads(text)
        if fields["format"] != FORMAT:
            raise ValueError("unknown format")
        return fields, int(fields["master_version"]), base64.b64decode(fields["wrapped"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise DecryptionError(f"key file {path} is malformed ({exc.__class__.__name__})") from None


def new_wrapped_file(path: Path, fields: dict, raw: bytes, aad: bytes, provider=None) -> bool:
    provider = provider or providers.get_provider()
    version, wrapped = provider.wrap(raw, aad)
    return write_file(path, encode(fields, version, wrapped), replace=False)


def open_wrapped_file(path: Path, aad: bytes, provider=None) -> tuple[dict, bytes]:
    """(the file's fields, the unwrapped key). ``FileNotFoundError``; ``DecryptionError``
    when the file was altered or is another key's (the associated data differs)."""
    provider = provider or providers.get_provider()
    fields, version, wrapped = _decode(read_file(path), path)
    raw = provider.unwrap(version, wrapped, aad)
    if len(raw) != KEY_BYTES:
        raise DecryptionError(f"key file {path} does not hold a {KEY_BYTES * 8}-bit key")
    return fields, raw


def rewrap_file(path: Path, aad: bytes, provider, target: int, *, tombstone: Path | None = None) -> str:
    """Re-wrap a key file with master version ``target``: "absent", "current",
    "rewrapped" or "unreadable" (left as it is). With ``tombstone``: a key destroyed
    (its tombstone written) while this ran is never brought back."""
    try:
        fields, version, wrapped = _decode(read_file(path), path)
    except FileNotFoundError:
        return "absent"
    except DecryptionError:
        return "unreadable"
    if version >= target:
        return "current"
    try:
        raw = provider.unwrap(version, wrapped, aad)
    except (DecryptionError, KeyConfigurationError):
        return "unreadable"
    new_version, new_wrapped = provider.wrap(raw, aad)
    for name in ("format", "master_version", "wrapped"):
        fields.pop(name, None)
    if not path.exists() or (tombstone is not None and tombstone.exists()):
        return "absent"  # destroyed (a purge) while this ran
    write_file(path, encode(fields, new_version, new_wrapped), replace=True)
    # A purge writes the tombstone, then removes the file: if it removed it between the
    # check above and the rename, the tombstone is there now, and the file goes again.
    if tombstone is not None and tombstone.exists():
        path.unlink(missing_ok=True)
        _sync_dir(path.parent)
        return "absent"
    return "rewrapped"


def master_version_of(path: Path) -> int | None:
    try:
        return _decode(read_file(path), path)[1]
    except (FileNotFoundError, DecryptionError):
        return None


# --- company KEKs: the default file store -------------------------------------------------


def kek_aad(company_id: uuid.UUID) -> bytes:
    return b"vouch/company-kek/v1\x00" + company_id.bytes


def kek_path(company_id: uuid.UUID) -> Path:
    return companies_dir() / f"{company_id}{KEK_SUFFIX}"


def tombstone_path(company_id: uuid.UUID) -> Path:
    return companies_dir() / f"{company_id}{TOMBSTONE_SUFFIX}"


class FileCompanyKeyStore:
    """Company KEKs as files in ``VOUCH_KEYS_DIR/companies``, wrapped by ``provider``."""

    def __init__(self, provider):
        self.provider = provider

    def create_company_kek(self, company_id: uuid.UUID) -> bytes:
        raw = secrets.token_bytes(KEY_BYTES)
        if not new_wrapped_file(
            kek_path(company_id), {"company": str(company_id)}, raw, kek_aad(company_id), self.provider
        ):
            raise KeyConfigurationError(f"company {company_id} already has a key-encryption key")
        return raw

    def load_company_kek(self, company_id: uuid.UUID) -> bytes:
        path = kek_path(company_id)
        try:
            fields, raw = open_wrapped_file(path, kek_aad(company_id), self.provider)
        except FileNotFoundError:
            raise KeyUnavailable(
                f"company {company_id} has no key-encryption key in {companies_dir()} (deleted, or the key store "
                "is not the one this installation uses)"
            ) from None
        except DecryptionError as exc:
            raise DecryptionError(
                f"the key-encryption key file of company {company_id} is not its own (replaced, altered or "
                f"copied from another company): {exc}"
            ) from None
        if fields.get("company") != str(company_id):
            raise DecryptionError(f"the key-encryption key file of company {company_id} names another company")
        return raw

    def destroy_company_kek(self, company_id: uuid.UUID) -> bool:
        path = kek_path(company_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _sync_dir(path.parent)
        return True


def company_store() -> CompanyKeyStore:
    """The provider itself if it keeps company KEKs, else the file store it wraps."""
    provider = providers.get_provider()
    if isinstance(provider, CompanyKeyStore):
        return provider
    return FileCompanyKeyStore(provider)


def uses_files() -> bool:
    return isinstance(company_store(), FileCompanyKeyStore)


def create_kek(company_id) -> bytes:
    company_id = _as_uuid(company_id)
    if is_purged(company_id):
        raise KeyUnavailable(f"company {company_id} was purged; its id is never given keys again")
    return company_store().create_company_kek(company_id)


def load_kek(company_id) -> bytes:
    company_id = _as_uuid(company_id)
    if is_purged(company_id):
        raise KeyUnavailable(f"company {company_id} was purged; its keys were destroyed")
    return company_store().load_company_kek(company_id)


def load_or_create_kek(company_id) -> tuple[bytes, bool]:
    """(the KEK, whether it was made now): for moving existing companies to KEKs."""
    try:
        return load_kek(company_id), False
    except KeyUnavailable:
        if is_purged(company_id):
            raise
    try:
        return create_kek(company_id), True
    except KeyConfigurationError:  # another process made it meanwhile
        return load_kek(company_id), False


def has_kek(company_id) -> bool:
    """Whether the company's KEK exists (a file here; the provider's answer, or a load, otherwise)."""
    company_id = _as_uuid(company_id)
    store = company_store()
    if isinstance(store, FileCompanyKeyStore):
        return kek_path(company_id).exists()
    has = getattr(store, "has_company_kek", None)
    if has is not None:
        return bool(has(company_id))
    try:
        store.load_company_kek(company_id)
    except (KeyUnavailable, DecryptionError):
        return False
    return True


def destroy_kek(company_id) -> bool:
    """Purge: leave the tombstone first (so a crash before the KEK is gone still refuses
    the company's keys, and the retried purge finishes), then destroy the KEK."""
    company_id = _as_uuid(company_id)
    stone = tombstone_path(company_id)
    if not stone.exists():
        write_file(stone, json.dumps({"company": str(company_id), "purged_at": int(time.time())}) + "\n", replace=True)
    return company_store().destroy_company_kek(company_id)


def is_purged(company_id) -> bool:
    return tombstone_path(_as_uuid(company_id)).exists()


def purged_companies() -> set[uuid.UUID]:
    return _ids_with_suffix(TOMBSTONE_SUFFIX)


def kek_companies() -> set[uuid.UUID]:
    """Companies with a KEK file (file store only)."""
    return _ids_with_suffix(KEK_SUFFIX)


def _ids_with_suffix(suffix: str) -> set[uuid.UUID]:
    found = set()
    try:
        entries = list(os.scandir(companies_dir()))
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise KeyConfigurationError(f"Cannot read {companies_dir()}: {exc.strerror or exc}.") from exc
    for entry in entries:
        if entry.name.endswith(suffix) and not entry.name.startswith("."):
            with contextlib.suppress(ValueError):
                found.add(uuid.UUID(entry.name.removesuffix(suffix)))
    return found


# --- master key rotation ------------------------------------------------------------------


def _wrapped_files() -> list[tuple[Path, bytes, Path | None]]:
    """Every key file wrapped by the master key: (path, associated data, tombstone)."""
    files: list[tuple[Path, bytes, Path | None]] = [(keys_dir() / CONTROL_BACKUP_FILE, control_backup_aad(), None)]
    if uses_files():
        files += [(kek_path(c), kek_aad(c), tombstone_path(c)) for c in sorted(kek_companies())]
    return files


def rewrap_all(provider, target: int) -> dict[str, int]:
    """Re-wrap every key file with master version ``target``; counts by outcome."""
    outcomes: Counter = Counter()
    for path, aad, tombstone in _wrapped_files():
        outcomes[rewrap_file(path, aad, provider, target, tombstone=tombstone)] += 1
    outcomes.pop("absent", None)
    return dict(outcomes)


def master_versions_in_use() -> Counter:
    """{master version: key files it wraps}, so rotation keeps a version they need."""
    counts: Counter = Counter()
    for path, _aad, _tombstone in _wrapped_files():
        version = master_version_of(path)
        if version is not None:
            counts[version] += 1
    return counts


def control_backup_aad() -> bytes:
    return b"vouch/control-backup-key/v1"
