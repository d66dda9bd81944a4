"""Keys that encrypt backup sets: one per company, one for the control database.

Contract used by vouch.backups (callers rely only on these two functions):

- ``company_backup_key(company_id) -> bytes``: 32 bytes; raises ``KeyUnavailable`` once
  the company has been purged (its keys destroyed), whatever database is restored.
- ``control_backup_key() -> bytes``: 32 bytes, from the key store, never from the control
  database (a control database restored from its backup must be decryptable).

Interim implementation, replaced by the per-company key-encryption keys kept in the
key store (see docs/backups.md, "Deleted companies stay deleted").
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from vouch.vault import keyring

BACKUP_LABEL = b"vouch/backup/v1"


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=BACKUP_LABEL, info=info).derive(key)


def company_backup_key(company_id) -> bytes:
    company = company_id if isinstance(company_id, uuid.UUID) else uuid.UUID(str(company_id))
    return _derive(keyring.keys_for(company).index, b"company\x00" + company.bytes)


def control_backup_key() -> bytes:
    path = Path(settings.VOUCH_KEYS_DIR) / "backup-control.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
    return _derive(path.read_bytes(), b"control")
