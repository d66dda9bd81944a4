"""Account secrets encrypted at rest under the installation's account secrets key.

The secrets behind people's second factors (a TOTP secret, a recovery-code seed) live
in the control database; whoever held a copy of them could compute every code. They
are stored sealed instead:

    stored      "vas1:" + base64url(format 1 | key version (4 bytes) | nonce (12 bytes) |
                AES-256-GCM ciphertext and tag)
    assoc data  "vouch/account-secret/v1" NUL | the 5-byte header | where the value belongs

Where the value belongs is the caller's binding (``vouch.guard.mfa_secrets``: the user,
the authenticator's type and the field), so a value copied to another row does not
open there. The key is one random 256-bit key per installation, an ``InstallationKey``
row (purpose "accounts") stored only wrapped by the master key, with its identity as
associated data, as company keys are; ``vouch keys rotate-master`` re-wraps it. It is
made with the first secret and unwrapped for each use, never kept: a sign-in opens one
or two secrets, and a key that is not cached cannot go stale (or linger in memory).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, transaction

from vouch.audit.events import record
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.vault import providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError
from vouch.vault.keyring import ensure_master_key
from vouch.vault.models import InstallationKey

PREFIX = "vas1:"
FORMAT = 1
HEADER_BYTES = 5
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
PURPOSE = "accounts"
_AAD_LABEL = b"vouch/account-secret/v1\x00"
log = logging.getLogger(__name__)

Describe = str | Callable[[], str]


def wrap_aad(purpose: str, version: int) -> bytes:
    """The associated data of an installation key's wrapping: its identity."""
    return b"vouch/installation-key/v1\x00" + purpose.encode() + b"\x00" + version.to_bytes(4, "big")


@dataclass(frozen=True)
class AccountKeys:
    """The unwrapped account secrets key versions, for one operation."""

    current: int
    ciphers: dict[int, AESGCM]


def _model(model=None):
    if model is not None:
        return model  # a migration's historical model
    return InstallationKey


def load(model=None) -> AccountKeys | None:
    """The account secrets key (every version), or None when none was made yet.
    ``DecryptionError``/``KeyConfigurationError`` when it does not unwrap."""
    provider = providers.get_provider()
    ciphers = {}
    for row in _model(model).objects.filter(purpose=PURPOSE).order_by("version"):
        raw = provider.unwrap(row.master_version, bytes(row.wrapped), wrap_aad(PURPOSE, row.version))
        ciphers[row.version] = AESGCM(raw)
    if not ciphers:
        return None
    return AccountKeys(current=max(ciphers), ciphers=ciphers)


def load_or_create(model=None) -> AccountKeys:
    """The account secrets key, made (version 1) if there is none yet."""
    keys = load(model)
    if keys is not None:
        return keys
    ensure_master_key()
    raw = secrets.token_bytes(KEY_BYTES)
    master_version, wrapped = providers.get_provider().wrap(raw, wrap_aad(PURPOSE, 1))
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a lost race
            _model(model).objects.create(purpose=PURPOSE, version=1, master_version=master_version, wrapped=wrapped)
    except IntegrityError:  # another process made it first: use that one
        keys = load(model)
        if keys is None:
            raise
        return keys
    return AccountKeys(current=1, ciphers={1: AESGCM(raw)})


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(plaintext: str, binding: bytes, *, keys: AccountKeys | None = None) -> str:
    """``plaintext`` sealed under the current key version, bound to ``binding``."""
    keys = keys or load_or_create()
    header = bytes((FORMAT,)) + keys.current.to_bytes(4, "big")
    nonce = os.urandom(NONCE_BYTES)
    sealed = keys.ciphers[keys.current].encrypt(nonce, plaintext.encode(), _AAD_LABEL + header + binding)
    return PREFIX + base64.urlsafe_b64encode(header + nonce + sealed).decode()


def key_version(value: str) -> int | None:
    """The key version a sealed value names (None when it is not one)."""
    raw = _decode(value)
    return None if raw is None else int.from_bytes(raw[1:HEADER_BYTES], "big")


def _decode(value: str) -> bytes | None:
    if not is_sealed(value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode())
    except (binascii.Error, ValueError):
        return None
    if len(raw) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES or raw[0] != FORMAT:
        return None
    return raw


def open_sealed(value: str, binding: bytes, *, what: Describe, keys: AccountKeys | None = None) -> str:
    """The plaintext of a sealed value, or ``DecryptionError`` recorded as a security
    event (``what`` names the value there; a callable is only called on failure)."""
    raw = _decode(value)
    if raw is None:
        integrity_failure(what, "not a sealed account secret")
    try:
        keys = keys or load()
    except (DecryptionError, KeyConfigurationError) as exc:
        integrity_failure(what, f"the account secrets key does not open: {exc}")
    version = int.from_bytes(raw[1:HEADER_BYTES], "big")
    cipher = keys.ciphers.get(version) if keys is not None else None
    if cipher is None:
        integrity_failure(what, f"sealed under account secrets key version {version}, which does not exist")
    header = raw[:HEADER_BYTES]
    try:
        plaintext = cipher.decrypt(
            raw[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
            raw[HEADER_BYTES + NONCE_BYTES :],
            _AAD_LABEL + header + binding,
        )
    except InvalidTag:
        integrity_failure(what, "authentication failed (altered, or copied from another account or authenticator)")
    return plaintext.decode()


def integrity_failure(what: Describe, reason: str) -> NoReturn:
    """Record a security event and raise: a secret that does not authenticate is
    never used, neither as it is nor as anything else."""
    what = what() if callable(what) else what
    event_id = None
    try:
        details = {"reason": reason}
        event_id = record(EventAction.DATA_INTEGRITY_FAIL, target=what, outcome=Outcome.FAILURE, details=details).pk
    except Exception:  # the failure itself must still surface
        log.exception("could not record a data integrity failure")
    raise UnreadableSecret(what, reason, event_id)


class UnreadableSecret(DecryptionError):
    """A sealed account secret that does not open; ``event_id`` is its security event
    (None when it could not be recorded)."""

    def __init__(self, what: str, reason: str, event_id: int | None):
        super().__init__(f"{what}: {reason}")
        self.what, self.reason, self.event_id = what, reason, event_id


def ensure_recorded(exc: UnreadableSecret) -> None:
    """Record ``exc`` again if its event is gone: recorded inside a transaction that
    rolled back with the failure (allauth checks recovery codes in one)."""
    if exc.event_id is not None and SecurityEvent.objects.filter(pk=exc.event_id).exists():
        return
    try:
        event = record(
            EventAction.DATA_INTEGRITY_FAIL, target=exc.what, outcome=Outcome.FAILURE, details={"reason": exc.reason}
        )
        exc.event_id = event.pk
    except Exception:
        log.exception("could not record a data integrity failure")


@dataclass(frozen=True)
class KeyInfo:
    """The account secrets key as ``vouch keys status`` shows it (None: not made yet)."""

    versions: list[int]
    master_versions: list[int]
    wrapped_at: object  # datetime of the newest wrapping
    opens: bool
    problem: str


def key_info() -> KeyInfo | None:
    from django.db.models.functions import Coalesce

    rows = list(
        InstallationKey.objects.filter(purpose=PURPOSE)
        .annotate(wrapped_on=Coalesce("rewrapped_at", "created_at"))
        .order_by("version")
    )
    if not rows:
        return None
    try:
        load()
    except (DecryptionError, KeyConfigurationError) as exc:
        opens, problem = False, str(exc)
    else:
        opens, problem = True, ""
    return KeyInfo(
        versions=[row.version for row in rows],
        master_versions=sorted({row.master_version for row in rows}),
        wrapped_at=max(row.wrapped_on for row in rows),
        opens=opens,
        problem=problem,
    )
