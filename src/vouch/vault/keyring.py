"""Company data keys: created at provisioning, unwrapped on use, cached briefly.

Each company has a data key (AES-256-GCM for values and files; versioned, rotated by
``vouch keys rotate-company``) and a blind-index key (HMAC-SHA256). Both are random
256-bit keys stored in ``DataKey`` rows (control database) wrapped twice: inside, by
the company's key-encryption key (KEK), which lives only in the key store
(``vault.keystore``) and is destroyed when the company is purged; outside, by the
master key, so a master rotation re-wraps only the outer layer. A control database
restored from before a purge therefore still opens nothing of the purged company.
Rows from before KEKs (scheme ``MASTER``) are still read, until ``vouch setup`` or
``vouch migrate`` moves them (``adopt_company_keks``). Unwrapped keys stay in this process's memory for at most
``VOUCH_KEY_CACHE_SECONDS`` and are then unwrapped again; that bound is also how long
a worker can keep encrypting with a version a rotation has just superseded, which
``vault.rotation`` waits out before destroying it. A value under a version newer than
the cached ones (added by a rotation since) loads the keys again (``keys_holding``).
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction

from vouch.vault import keystore, providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError, KeyUnavailable
from vouch.vault.models import DataKey, InstallationKey, KeyPurpose, KeyScheme, KeyState

KEY_BYTES = 32
MAX_CACHED_COMPANIES = 2048
# Domain separation for secrets derived from a company's keys (HKDF salt).
ROLE_PASSWORD_LABEL = b"vouch/postgres-role-password/v1"


# The inner layer (scheme COMPANY_KEK): marker, nonce, AES-256-GCM under the company KEK.
INNER_MARKER = b"VKEK\x01"
NONCE_BYTES = 12
INNER_BYTES = len(INNER_MARKER) + NONCE_BYTES + KEY_BYTES + 16


def wrap_aad(company_id: uuid.UUID, purpose: str, version: int) -> bytes:
    return b"vouch/datakey/v1\x00" + company_id.bytes + purpose.encode() + b"\x00" + version.to_bytes(4, "big")


def inner_aad(company_id: uuid.UUID, purpose: str, version: int) -> bytes:
    return b"vouch/datakey-kek/v1\x00" + company_id.bytes + purpose.encode() + b"\x00" + version.to_bytes(4, "big")


def seal_inner(kek: bytes, key: bytes, company_id: uuid.UUID, purpose: str, version: int) -> bytes:
    """The inner wrapping of a data or index key under the company's KEK."""
    nonce = os.urandom(NONCE_BYTES)
    return INNER_MARKER + nonce + AESGCM(kek).encrypt(nonce, key, inner_aad(company_id, purpose, version))


def open_inner(kek: bytes, inner: bytes, company_id: uuid.UUID, purpose: str, version: int) -> bytes:
    if len(inner) != INNER_BYTES or not inner.startswith(INNER_MARKER):
        raise DecryptionError(f"key {purpose} v{version} of company {company_id} is not in the company-KEK format")
    body = inner[len(INNER_MARKER) :]
    try:
        return AESGCM(kek).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], inner_aad(company_id, purpose, version))
    except InvalidTag:
        raise DecryptionError(
            f"key {purpose} v{version} of company {company_id} does not open with the company's key-encryption key "
            "(the key file was replaced, or the row altered or copied from another company)"
        ) from None


def unwrap_row(
    provider,
    company_id: uuid.UUID,
    purpose: str,
    version: int,
    scheme: int,
    master_version: int,
    wrapped: bytes,
    kek: bytes | None,
) -> bytes:
    """A ``DataKey`` row's key: outer layer with the master key, inner with ``kek``."""
    outer = provider.unwrap(master_version, wrapped, wrap_aad(company_id, purpose, version))
    if scheme == KeyScheme.COMPANY_KEK:
        if kek is None:
            raise KeyUnavailable(f"company {company_id} has no key-encryption key")
        return open_inner(kek, outer, company_id, purpose, version)
    if len(outer) != KEY_BYTES:  # a KEK-format row relabelled as an old one
        raise DecryptionError(f"key {purpose} v{version} of company {company_id} is not in the master-key format")
    return outer


@dataclass
class CompanyKeys:
    """One company's unwrapped keys, as held in the cache."""

    company_id: uuid.UUID
    current_version: int
    data: dict[int, bytes]
    index: bytes
    loaded_at: float
    _ciphers: dict[int, AESGCM] = field(default_factory=dict)
    id_bytes: bytes = b""  # the company id as bound into every value's associated data
    expires_at: float = 0.0
    # Keys derived from the index key for one use each (``index_subkey``), by label: they
    # expire with the keys they come from.
    derived: dict[bytes, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id_bytes = self.company_id.bytes
        self.expires_at = self.loaded_at + settings.VOUCH_KEY_CACHE_SECONDS

    def cipher(self, version: int) -> AESGCM:
        cipher = self._ciphers.get(version)
        if cipher is None:
            key = self.data.get(version)
            if key is None:
                raise KeyUnavailable(f"data key version {version} of company {self.company_id} no longer exists")
            cipher = self._ciphers[version] = AESGCM(key)
        return cipher


_cache: OrderedDict[uuid.UUID, CompanyKeys] = OrderedDict()
_lock = threading.Lock()


def _as_uuid(company_id) -> uuid.UUID:
    return company_id if isinstance(company_id, uuid.UUID) else uuid.UUID(str(company_id))


def ensure_master_key() -> int:
    """The current master key version, creating the first one on a new installation.

    A missing key is only created when no company key (nor installation key) exists
    yet: if one exists, its master key was lost or moved, and making a new one would
    silently strand it, so this refuses instead."""
    provider = providers.get_provider()
    if provider.versions():
        return provider.current_version()
    if DataKey.objects.exists() or InstallationKey.objects.exists():
        raise KeyConfigurationError(
            f"No master key found in {provider.describe()}, but company keys wrapped by one exist. "
            "Restore the key directory from its backup (see docs/operations/production.md, 'Keys'); "
            "without it company data cannot be read."
        )
    return provider.create_version()


def _new_key_row(company_id: uuid.UUID, purpose: str, version: int, kek: bytes | None) -> DataKey:
    """A new key's row: inside the company KEK then the master key; with ``kek`` None
    (a company not yet moved to KEKs) the master key only, as its other rows."""
    raw = secrets.token_bytes(KEY_BYTES)
    inner = raw if kek is None else seal_inner(kek, raw, company_id, purpose, version)
    master_version, wrapped = providers.get_provider().wrap(inner, wrap_aad(company_id, purpose, version))
    return DataKey(
        company_id=company_id,
        purpose=purpose,
        version=version,
        master_version=master_version,
        wrapped=wrapped,
        scheme=KeyScheme.MASTER if kek is None else KeyScheme.COMPANY_KEK,
    )


def create_company_keys(company_id) -> None:
    """A new company's KEK (key store) and data and index keys (version 1 of each)."""
    create_keys_for_companies([company_id])


def create_keys_for_companies(company_ids) -> None:
    """Keys for many new companies in one insert (bulk imports, benchmarks). Each
    company's KEK is made first, in the key store: a failed insert leaves an unused
    KEK file (``discard_kek`` removes it), never a key row without its KEK."""
    ids = [_as_uuid(company_id) for company_id in company_ids]
    ensure_master_key()
    rows = []
    for cid in ids:
        kek = keystore.create_kek(cid)
        rows += [_new_key_row(cid, purpose, 1, kek) for purpose in (KeyPurpose.DATA, KeyPurpose.INDEX)]
    DataKey.objects.bulk_create(rows, batch_size=1000)
    for cid in ids:
        forget(cid)


def discard_kek(company_id) -> None:
    """Remove the KEK of a company whose creation failed (no tombstone: it never existed)."""
    keystore.company_store().destroy_company_kek(_as_uuid(company_id))


def add_data_key_version(company_id) -> int:
    """A new data key version that encrypts from now on; the old ones become retiring
    (they still open existing ciphertext). Returns the new version."""
    company_id = _as_uuid(company_id)
    with transaction.atomic():
        rows = list(
            DataKey.objects.select_for_update()
            .filter(company_id=company_id, purpose=KeyPurpose.DATA)
            .order_by("version")
        )
        if not rows:
            raise KeyUnavailable(f"company {company_id} has no data key")
        version = rows[-1].version + 1
        # A company on KEKs gets its new key under its KEK (KeyUnavailable if that is gone).
        kek = keystore.load_kek(company_id) if any(r.scheme == KeyScheme.COMPANY_KEK for r in rows) else None
        DataKey.objects.filter(company_id=company_id, purpose=KeyPurpose.DATA).update(state=KeyState.RETIRING)
        _new_key_row(company_id, KeyPurpose.DATA, version, kek).save()
    forget(company_id)
    return version


def destroy_data_key_versions(company_id, versions: list[int]) -> int:
    """Delete retiring data key versions once nothing is encrypted under them."""
    company_id = _as_uuid(company_id)
    deleted, _ = DataKey.objects.filter(
        company_id=company_id, purpose=KeyPurpose.DATA, state=KeyState.RETIRING, version__in=versions
    ).delete()
    forget(company_id)
    return deleted


def shred(company_id) -> int:
    """Crypto-shredding: destroy every key of the company, its key rows (control
    database) and its KEK (key store, leaving a tombstone). Its data, wherever a copy of
    it survives (backups, mirrors, a control database restored from before), can no
    longer be decrypted. Returns the number of key rows deleted."""
    deleted = delete_key_rows(company_id)
    destroy_kek(company_id)
    return deleted


def delete_key_rows(company_id) -> int:
    """The control database's half of ``shred``: for a purge, which deletes the rows in
    its transaction and destroys the KEK (``destroy_kek``) once that has committed."""
    company_id = _as_uuid(company_id)
    deleted, _ = DataKey.objects.filter(company_id=company_id).delete()
    forget(company_id)
    return deleted


def destroy_kek(company_id) -> bool:
    """Destroy the company's KEK (leaving its tombstone in the key store) and this
    process's cached keys. True if a KEK was destroyed now; idempotent."""
    company_id = _as_uuid(company_id)
    destroyed = keystore.destroy_kek(company_id)
    forget(company_id)
    return destroyed


def _load(company_id: uuid.UUID) -> CompanyKeys:
    if keystore.is_purged(company_id):
        # The control database may be one restored from before the purge: its rows are
        # not to be trusted, old-format ones (master key only) included.
        raise KeyUnavailable(f"company {company_id} was purged; its keys were destroyed")
    provider = providers.get_provider()
    data: dict[int, bytes] = {}
    index: bytes | None = None
    current = 0
    kek: bytes | None = None
    for row in DataKey.objects.filter(company_id=company_id).only(
        "purpose", "version", "state", "master_version", "wrapped", "scheme"
    ):
        if row.scheme == KeyScheme.COMPANY_KEK and kek is None:
            kek = keystore.load_kek(company_id)  # KeyUnavailable once destroyed
        raw = unwrap_row(
            provider, company_id, row.purpose, row.version, row.scheme, row.master_version, bytes(row.wrapped), kek
        )
        if row.purpose == KeyPurpose.INDEX:
            index = raw
        else:
            data[row.version] = raw
            if row.state == KeyState.ACTIVE:
                current = max(current, row.version)
    if not data or index is None or not current:
        raise KeyUnavailable(f"company {company_id} has no usable keys (deleted, or never provisioned)")
    return CompanyKeys(
        company_id=company_id, current_version=current, data=data, index=index, loaded_at=time.monotonic()
    )


def keys_for(company_id) -> CompanyKeys:
    """The company's unwrapped keys, from the cache while they are fresh."""
    entry = _cache.get(company_id)  # callers pass the context's UUID: no conversion then
    if entry is None:
        company_id = _as_uuid(company_id)
        entry = _cache.get(company_id)
    # expires_at, not settings: reading a setting costs about a microsecond, and this
    # runs for every row of a long list.
    if entry is not None and time.monotonic() < entry.expires_at:
        return entry
    company_id = _as_uuid(company_id)
    entry = _load(company_id)
    _store(company_id, entry)
    return entry


def _store(company_id: uuid.UUID, entry: CompanyKeys) -> None:
    with _lock:
        _cache[company_id] = entry
        _cache.move_to_end(company_id)
        while len(_cache) > MAX_CACHED_COMPANIES:
            _cache.popitem(last=False)
    _start_sweeper()


_reload_lock = threading.Lock()


def keys_holding(company_id, version: int, keys: CompanyKeys | None = None) -> CompanyKeys | None:
    """The company's keys with data key ``version`` in them, or None if it has no such version.

    A process keeps its copy of the keys for up to ``VOUCH_KEY_CACHE_SECONDS``; when
    ``vouch keys rotate-company`` (another process) adds a version meanwhile, values
    re-encrypted under it reach this process before its copy expires. So a version newer
    than every one held makes this look in the control database, and load the keys again
    (once) if the version is there. Versions only ever grow, so a missing older one was
    destroyed and is not looked for. A version that does not exist (altered ciphertext)
    costs one indexed query and never a reload, so forged values cannot make a process
    unwrap keys again and again (a KMS call each, with a KMS provider); and concurrent
    lookups of the same new version reload it once between them."""
    company_id = _as_uuid(company_id)
    keys = keys if keys is not None else keys_for(company_id)
    if version in keys.data:
        return keys
    if version <= max(keys.data):
        return None
    if not DataKey.objects.filter(company_id=company_id, purpose=KeyPurpose.DATA, version=version).exists():
        return None
    with _reload_lock:
        entry = _cache.get(company_id)
        if entry is None or version not in entry.data:  # not already reloaded by another thread
            entry = _load(company_id)
            _store(company_id, entry)
    return entry if version in entry.data else None


def sweep(now: float | None = None) -> int:
    """Drop every cached company whose keys are older than the cache time. Entries are
    ordered by load time (a reload moves one to the end), so this stops at the first
    fresh one."""
    now = time.monotonic() if now is None else now
    limit = settings.VOUCH_KEY_CACHE_SECONDS
    dropped = 0
    with _lock:
        while _cache:
            company_id, entry = next(iter(_cache.items()))
            if now - entry.loaded_at < limit:
                break
            del _cache[company_id]
            dropped += 1
    return dropped


_sweeper: threading.Thread | None = None


def _start_sweeper() -> None:
    """A daemon thread per process that removes expired keys even when nothing asks for
    them again, so an unwrapped key never outlives the cache time by more than half of it."""
    global _sweeper
    if _sweeper is not None and _sweeper.is_alive():
        return
    with _lock:
        if _sweeper is not None and _sweeper.is_alive():
            return

        def run() -> None:
            while True:
                time.sleep(max(0.5, settings.VOUCH_KEY_CACHE_SECONDS / 2))
                sweep()

        _sweeper = threading.Thread(target=run, name="vouch-key-cache-sweeper", daemon=True)
        _sweeper.start()


def forget(company_id=None) -> None:
    """Drop cached keys (one company's, or all), so the next use reads the key rows."""
    with _lock:
        if company_id is None:
            _cache.clear()
        else:
            _cache.pop(_as_uuid(company_id), None)


def _derive(index_key: bytes, label: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=label, info=info).derive(index_key)


def index_subkey(company_id, label: bytes) -> bytes:
    """A key of the company's for one kind of keyed index, named by ``label``: HKDF-SHA256
    of its blind-index key with the label as salt. Independent of the index key itself
    and of every other label's key, so one kind of index cannot be matched against
    another's; never stored, destroyed with the company's keys (crypto-shredding), and
    the same through data- and master-key rotations (the index key never changes)."""
    keys = keys_for(company_id)
    key = keys.derived.get(label)
    if key is None:
        key = keys.derived[label] = _derive(keys.index, label, b"")
    return key


def role_password(company_id, role: str) -> str:
    """The password of company ``company_id``'s own PostgreSQL role ``role``.

    Derived, not stored: HKDF-SHA256 of the company's blind-index key, with its own label
    as salt and the role name as info, so it is independent of every other use of that key.
    The index key is never rotated (data-key rotation leaves it alone) and a master-key
    rotation only re-wraps it, so the password stays the same through both; crypto-shredding
    the company destroys it with the rest. Raises ``KeyUnavailable`` for a company without keys."""
    raw = _derive(keys_for(company_id).index, ROLE_PASSWORD_LABEL, role.encode())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
