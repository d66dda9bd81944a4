"""The ciphertext format of one encrypted value, and the one place that opens it.

    byte 0      format version (1)
    bytes 1-4   data key version (big-endian)
    bytes 5-16  96-bit random nonce
    bytes 17-   AES-256-GCM ciphertext and 128-bit tag

The associated data is the 5-byte header plus where the value belongs: company id,
model, field and the row's primary key. A value moved to another row, column, table
or company therefore fails authentication instead of decrypting there.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from typing import NoReturn

from cryptography.exceptions import InvalidTag

from vouch.audit.events import record
from vouch.audit.models import EventAction, Outcome
from vouch.vault import keyring
from vouch.vault.errors import DecryptionError

FORMAT = 1
HEADER_BYTES = 5
NONCE_BYTES = 12
TAG_BYTES = 16
log = logging.getLogger(__name__)


def row_bytes(row_id) -> bytes:
    return row_id.bytes if type(row_id) is uuid.UUID else str(row_id).encode()


def binding(company_id: uuid.UUID, location: bytes, row_id) -> bytes:
    """Associated data after the header: ``location`` is ``b"app.model\\0field"``."""
    return company_id.bytes + location + b"\x00" + row_bytes(row_id)


def _encrypt(keys: keyring.CompanyKeys, plaintext: bytes, bound_to: bytes) -> bytes:
    version = keys.current_version
    header = bytes((FORMAT,)) + version.to_bytes(4, "big")
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + keys.cipher(version).encrypt(nonce, plaintext, header + bound_to)


def seal_value(company_id: uuid.UUID, plaintext: bytes, location: bytes, row_id) -> bytes:
    """A field value's ciphertext, bound to ``binding(company_id, location, row_id)``."""
    keys = keyring.keys_for(company_id)
    return _encrypt(keys, plaintext, keys.id_bytes + location + b"\x00" + row_bytes(row_id))


def key_version(sealed: bytes) -> int:
    return int.from_bytes(sealed[1:HEADER_BYTES], "big")


Describe = str | Callable[[], str]


def _decrypt(company_id: uuid.UUID, keys: keyring.CompanyKeys, sealed: bytes, bound_to: bytes, what: Describe) -> bytes:
    if len(sealed) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES or sealed[0] != FORMAT:
        integrity_failure(company_id, what, "not a Vouch ciphertext")
    version = int.from_bytes(sealed[1:HEADER_BYTES], "big")
    holding = keys if version in keys.data else keyring.keys_holding(company_id, version, keys)
    if holding is None:
        integrity_failure(company_id, what, f"encrypted with key version {version}, which this company does not have")
    cipher = holding.cipher(version)
    header = sealed[:HEADER_BYTES]
    try:
        return cipher.decrypt(
            sealed[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES], sealed[HEADER_BYTES + NONCE_BYTES :], header + bound_to
        )
    except InvalidTag:
        integrity_failure(
            company_id, what, "authentication failed (altered, or copied from another row, column or company)"
        )


def open_sealed(company_id: uuid.UUID, sealed: bytes, bound_to: bytes, *, what: Describe) -> bytes:
    """The plaintext, or ``DecryptionError`` (recorded as a security event). ``what``
    names the value in that event; a callable is only called on failure."""
    return _decrypt(company_id, keyring.keys_for(company_id), sealed, bound_to, what)


def open_value(company_id: uuid.UUID, sealed: bytes, location: bytes, row_id, *, what: Describe) -> bytes:
    """``open_sealed`` for a field value. The usual read of a row goes through the
    quicker ``fields._open_row``; this is the checked path it falls back to."""
    keys = keyring.keys_for(company_id)
    return _decrypt(company_id, keys, sealed, keys.id_bytes + location + b"\x00" + row_bytes(row_id), what)


def integrity_failure(company_id: uuid.UUID, what: Describe, reason: str) -> NoReturn:
    """Record a security event and raise: a value that does not authenticate is never
    shown, neither as ciphertext nor as anything else."""
    what = what() if callable(what) else what

    try:
        record(
            EventAction.DATA_INTEGRITY_FAIL,
            company=company_id,
            target=what,
            outcome=Outcome.FAILURE,
            details={"reason": reason},
        )
    except Exception:  # the failure itself must still surface
        log.exception("could not record a data integrity failure")
    raise DecryptionError(f"{what}: {reason}")
