"""Keys that encrypt backup sets: one per company, one for the control database.

Contract used by vouch.backups (callers rely only on these two functions):

- ``company_backup_key(company_id) -> bytes``: 32 bytes, derived (HKDF-SHA256, its own
  label) from the company's key-encryption key, which lives only in the key store and
  is destroyed when the company is purged: from then on this raises ``KeyUnavailable``,
  whatever control database is restored, and the company's backups open for nobody.
- ``control_backup_key() -> bytes``: 32 bytes, derived from a random key kept in the
  key store (``backup-control.key``, wrapped by the master key and re-wrapped by
  ``vouch keys rotate-master``), made on first use; never from the control database,
  so a control database restored from its backup can still be decrypted.

See docs/backups.md, "Deleted companies stay deleted".
"""

from __future__ import annotations

import contextlib
import secrets
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vouch.vault import keyring, keystore, providers
from vouch.vault.errors import DecryptionError

BACKUP_LABEL = b"vouch/backup/v1"
COMPANY_LABEL = b"vouch/backup/company-kek/v1"
KEY_BYTES = 32


def _derive(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(key)


def company_backup_key(company_id) -> bytes:
    """The key of the company's backups; ``KeyUnavailable`` once it has been purged (or
    before it has a KEK: `vouch setup` gives existing companies theirs)."""
    company = company_id if isinstance(company_id, uuid.UUID) else uuid.UUID(str(company_id))
    return _derive(keystore.load_kek(company), COMPANY_LABEL, b"company\x00" + company.bytes)


def control_backup_key() -> bytes:
    """The key of the control database's backups, from the key store."""
    name, aad = keystore.CONTROL_BACKUP_FILE, keystore.control_backup_aad()
    for _attempt in range(3):
        try:
            _fields, raw = keystore.open_wrapped(name, aad)
        except FileNotFoundError:
            keyring.ensure_master_key()  # a new installation's first use
            keystore.new_wrapped(name, {"purpose": "control-backup"}, secrets.token_bytes(KEY_BYTES), aad)
            continue  # read back what is there: another process (or server) may have made it first
        except DecryptionError:
            if not _adopt_interim(name, aad):
                raise
            continue
        return _derive(raw, BACKUP_LABEL, b"control")
    raise DecryptionError(
        f"the control backup key {keystore.store().describe(name)} keeps changing; is another process replacing it?"
    )


def _adopt_interim(name: str, aad: bytes) -> bool:
    """An interim release kept this key as 32 raw bytes: wrap the same key (so backups
    made with it still open) in place. False when the blob is something else."""
    blobs = keystore.store()
    with contextlib.suppress(FileNotFoundError):
        raw, tag = blobs.read(name)
        if len(raw) == KEY_BYTES:
            version, wrapped = providers.get_provider().wrap(raw, aad)
            blobs.replace(name, keystore.encode({"purpose": "control-backup"}, version, wrapped).encode(), if_tag=tag)
            return True
    return False
