"""Keys kept only in the key store, never in a database.

The key store is ``VOUCH_KEY_STORE_URL``: by default the directory ``VOUCH_KEYS_DIR``,
or an S3-compatible bucket that several app servers share (``vouch.vault.keyblobs``
keeps the blobs in either place). Two kinds of key live there, each a small JSON blob
holding the key wrapped by the master key provider (AES-256-GCM, the key's identity as
associated data), so the key store alone, or a copy of it, opens nothing:

    companies/<company uuid>.kek   a company's key-encryption key (KEK): the inner
                                   wrapping of its data and index keys (vault.keyring)
                                   and the root of its backup key (vault.backup_keys)
    backup-control.key             the key of the control database's backups

Purging a company destroys its KEK and leaves ``companies/<uuid>.purged`` (a tombstone,
no key material): a control database restored from before the purge still holds the
company's wrapped key rows, but without the KEK they open nothing, and the tombstone
makes Vouch refuse the company's keys, old-format rows included, and refuse to make it
a new KEK.

A provider may keep company KEKs itself (a KMS adapter: one KMS key per company) by
defining ``create_company_kek``, ``load_company_kek`` and ``destroy_company_kek`` (see
``CompanyKeyStore``); otherwise the key store's blobs are used, wrapped by that provider.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
import time
import uuid
from collections import Counter
from typing import Protocol, runtime_checkable

from django.conf import settings

from vouch.vault import keyblobs, providers
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


def key_store_url() -> str:
    """``VOUCH_KEY_STORE_URL``, or ``VOUCH_KEYS_DIR`` when it is not set."""
    return settings.VOUCH_KEY_STORE_URL or settings.VOUCH_KEYS_DIR


def store() -> keyblobs.KeyBlobs:
    """Where the key store's blobs are (a directory or a bucket)."""
    url = key_store_url()
    try:
        return keyblobs.open_key_blobs(url)
    except ValueError as exc:
        raise KeyConfigurationError(f"VOUCH_KEY_STORE_URL: {exc}") from None


def describe(name: str = "") -> str:
    """Where the key store (or one of its blobs) is, for messages."""
    return store().describe(name)


# --- wrapped keys -----------------------------------------------------------------------


def encode(fields: dict, version: int, wrapped: bytes) -> str:
    return (
        json.dumps(
            fields | {"format": FORMAT, "master_version": version, "wrapped": base64.b64encode(wrapped).decode()}
        )
        + "\n"
    )


def _decode(data: bytes, name: str) -> tuple[dict, int, bytes]:
    where = store().describe(name)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise DecryptionError(f"key file {where} is malformed (not text)") from None
    try:
        fields = json.loads(text)
        if fields["format"] != FORMAT:
            raise ValueError("unknown format")
        return fields, int(fields["master_version"]), base64.b64decode(fields["wrapped"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise DecryptionError(f"key file {where} is malformed ({exc.__class__.__name__})") from None


def new_wrapped(name: str, fields: dict, raw: bytes, aad: bytes, provider=None) -> bool:
    """Store ``raw`` wrapped as ``name`` unless the name exists (then False)."""
    provider = provider or providers.get_provider()
    version, wrapped = provider.wrap(raw, aad)
    return store().create(name, encode(fields, version, wrapped).encode())


def open_wrapped(name: str, aad: bytes, provider=None) -> tuple[dict, bytes]:
    """(the blob's fields, the unwrapped key). ``FileNotFoundError``; ``DecryptionError``
    when the blob was altered or is another key's (the associated data differs)."""
    provider = provider or providers.get_provider()
    data, _tag = store().read(name)
    fields, version, wrapped = _decode(data, name)
    raw = provider.unwrap(version, wrapped, aad)
    if len(raw) != KEY_BYTES:
        raise DecryptionError(f"key file {store().describe(name)} does not hold a {KEY_BYTES * 8}-bit key")
    return fields, raw


def rewrap(name: str, aad: bytes, provider, target: int, *, tombstone: str | None = None) -> str:
    """Re-wrap a key blob with master version ``target``: "absent", "current",
    "rewrapped" or "unreadable" (left as it is). The blob is replaced only if it is still
    the one read (else read again). With ``tombstone``: a key destroyed (its tombstone
    written) while this ran is never brought back."""
    blobs = store()
    for _attempt in range(3):
        try:
            data, tag = blobs.read(name)
            fields, version, wrapped = _decode(data, name)
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
        for field in ("format", "master_version", "wrapped"):
            fields.pop(field, None)
        if tombstone is not None and blobs.exists(tombstone):
            return "absent"  # destroyed (a purge) while this ran
        if not blobs.replace(name, encode(fields, new_version, new_wrapped).encode(), if_tag=tag):
            continue  # changed or removed since read: look again
        # A purge writes the tombstone, then removes the key: if it removed it between
        # the read and the replace, the tombstone is there now, and the key goes again.
        if tombstone is not None and blobs.exists(tombstone):
            blobs.delete(name)
            return "absent"
        return "rewrapped"
    return "unreadable"  # kept changing: left for the next rotation


def master_version_of(name: str) -> int | None:
    try:
        return _decode(store().read(name)[0], name)[1]
    except (FileNotFoundError, DecryptionError):
        return None


# --- company KEKs: the key store's blobs ----------------------------------------------------


def kek_aad(company_id: uuid.UUID) -> bytes:
    return b"vouch/company-kek/v1\x00" + company_id.bytes


def kek_name(company_id) -> str:
    return f"{COMPANIES}/{_as_uuid(company_id)}{KEK_SUFFIX}"


def tombstone_name(company_id) -> str:
    return f"{COMPANIES}/{_as_uuid(company_id)}{TOMBSTONE_SUFFIX}"


class StoredCompanyKeyStore:
    """Company KEKs as blobs in the key store (``companies/``), wrapped by ``provider``."""

    def __init__(self, provider):
        self.provider = provider

    def create_company_kek(self, company_id: uuid.UUID) -> bytes:
        raw = secrets.token_bytes(KEY_BYTES)
        if not new_wrapped(kek_name(company_id), {"company": str(company_id)}, raw, kek_aad(company_id), self.provider):
            raise KeyConfigurationError(f"company {company_id} already has a key-encryption key")
        return raw

    def load_company_kek(self, company_id: uuid.UUID) -> bytes:
        try:
            fields, raw = open_wrapped(kek_name(company_id), kek_aad(company_id), self.provider)
        except FileNotFoundError:
            raise KeyUnavailable(
                f"company {company_id} has no key-encryption key in {store().describe(COMPANIES)} (deleted, or the "
                "key store is not the one this installation uses)"
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
        return store().delete(kek_name(company_id))


def company_store() -> CompanyKeyStore:
    """The provider itself if it keeps company KEKs, else the key store's blobs."""
    provider = providers.get_provider()
    if isinstance(provider, CompanyKeyStore):
        return provider
    return StoredCompanyKeyStore(provider)


def uses_key_store() -> bool:
    """Whether company KEKs are blobs in the key store (not kept by the provider)."""
    return isinstance(company_store(), StoredCompanyKeyStore)


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
    """(the KEK, whether it was made now): for moving existing companies to KEKs. What
    is returned is read back from the store, so a KEK some other process stored in a
    race (a bucket ignoring ``If-None-Match``) is the one used, never a lost one."""
    try:
        return load_kek(company_id), False
    except KeyUnavailable:
        if is_purged(company_id):
            raise
    created = True
    try:
        create_kek(company_id)
    except KeyConfigurationError:  # another process made it meanwhile
        created = False
    return load_kek(company_id), created


def has_kek(company_id) -> bool:
    """Whether the company's KEK exists (in the key store; the provider's answer, or a load, otherwise)."""
    company_id = _as_uuid(company_id)
    keeper = company_store()
    if isinstance(keeper, StoredCompanyKeyStore):
        return store().exists(kek_name(company_id))
    has = getattr(keeper, "has_company_kek", None)
    if has is not None:
        return bool(has(company_id))
    try:
        keeper.load_company_kek(company_id)
    except (KeyUnavailable, DecryptionError):
        return False
    return True


def destroy_kek(company_id) -> bool:
    """Purge: leave the tombstone first (so a crash before the KEK is gone still refuses
    the company's keys, and the retried purge finishes), then destroy the KEK."""
    company_id = _as_uuid(company_id)
    stone, blobs = tombstone_name(company_id), store()
    if not blobs.exists(stone):
        blobs.replace(stone, (json.dumps({"company": str(company_id), "purged_at": int(time.time())}) + "\n").encode())
    return company_store().destroy_company_kek(company_id)


def is_purged(company_id) -> bool:
    return store().exists(tombstone_name(company_id))


def purged_companies() -> set[uuid.UUID]:
    return _ids_with_suffix(TOMBSTONE_SUFFIX)


def kek_companies() -> set[uuid.UUID]:
    """Companies with a KEK in the key store (not those a provider keeps)."""
    return _ids_with_suffix(KEK_SUFFIX)


def _ids_with_suffix(suffix: str) -> set[uuid.UUID]:
    found = set()
    for name in store().names(COMPANIES):
        if name.endswith(suffix):
            with contextlib.suppress(ValueError):
                found.add(uuid.UUID(name.removesuffix(suffix)))
    return found


# --- master key rotation ------------------------------------------------------------------


def _wrapped_names() -> list[tuple[str, bytes, str | None]]:
    """Every key blob wrapped by the master key: (name, associated data, tombstone)."""
    names: list[tuple[str, bytes, str | None]] = [(CONTROL_BACKUP_FILE, control_backup_aad(), None)]
    if uses_key_store():
        names += [(kek_name(c), kek_aad(c), tombstone_name(c)) for c in sorted(kek_companies())]
    return names


def rewrap_all(provider, target: int) -> dict[str, int]:
    """Re-wrap every key blob with master version ``target``; counts by outcome."""
    outcomes: Counter = Counter()
    for name, aad, tombstone in _wrapped_names():
        outcomes[rewrap(name, aad, provider, target, tombstone=tombstone)] += 1
    outcomes.pop("absent", None)
    return dict(outcomes)


def master_versions_in_use() -> Counter:
    """{master version: key blobs it wraps}, so rotation keeps a version they need."""
    counts: Counter = Counter()
    for name, _aad, _tombstone in _wrapped_names():
        version = master_version_of(name)
        if version is not None:
            counts[version] += 1
    return counts


def control_backup_aad() -> bytes:
    return b"vouch/control-backup-key/v1"
