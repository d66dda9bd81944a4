"""Outbox messages encrypted at rest, under an outbox key wrapped by the master key.

The outbox holds names and live private links, so a message is never written in
plain text. One random 256-bit *outbox key* per installation lives beside the messages
as ``outbox.key`` (0600), only wrapped by the master key provider (the same wrapping
as company data keys: AES-256-GCM, nonce, the key's identity as associated data), so
the outbox directory alone, or a copy of it, opens nothing. ``vouch keys
rotate-master`` re-wraps it (``rewrap``) before it retires a master key version.

    key file   JSON: format, key id (16 random bytes, hex), master key version, wrapped key
    message    "VCHM" | format 1 | key id (16 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext
               associated data: the 21-byte header, a NUL, the file's name

The name is bound in, so a message renamed (or swapped with another) does not open;
the key id tells a message sealed under a replaced outbox key from a tampered one.
The key is unwrapped for each send or read and not kept: a read lists at most a few
hundred messages under one unwrap.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vouch.vault import providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError
from vouch.vault.keyring import ensure_master_key

KEY_FILE = "outbox.key"
# A key that no longer unwraps is set aside under this prefix (not deleted: restoring a
# lost master key version makes it, and the messages under it, readable again).
UNREADABLE_KEY_PREFIX = f"{KEY_FILE}.unreadable-"
MAGIC = b"VCHM"
FORMAT = 1
KEY_BYTES = 32
KEY_ID_BYTES = 16
NONCE_BYTES = 12
HEADER_BYTES = len(MAGIC) + 1 + KEY_ID_BYTES
log = logging.getLogger(__name__)


class UnreadableKey(DecryptionError):
    """The outbox key file is malformed, altered, or wrapped by a master key version
    the provider no longer has."""


@dataclass(frozen=True)
class OutboxKey:
    key_id: bytes
    cipher: AESGCM


def wrap_aad(key_id: bytes) -> bytes:
    return b"vouch/outbox-key/v1\x00" + key_id


def _binding(header: bytes, name: str) -> bytes:
    return header + b"\x00" + name.encode()


def header(key_id: bytes) -> bytes:
    """The first ``HEADER_BYTES`` of every message sealed under the outbox key ``key_id``."""
    return MAGIC + bytes((FORMAT,)) + key_id


def seal(key: OutboxKey, name: str, plaintext: bytes) -> bytes:
    """The stored bytes of message ``name``."""
    header_bytes = header(key.key_id)
    nonce = os.urandom(NONCE_BYTES)
    return header_bytes + nonce + key.cipher.encrypt(nonce, plaintext, _binding(header_bytes, name))


def is_sealed(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def open_message(key: OutboxKey, name: str, data: bytes) -> bytes:
    """The plaintext of message ``name``, or ``DecryptionError``: altered, truncated,
    renamed, or sealed under another outbox key."""
    header = data[:HEADER_BYTES]
    if len(data) < HEADER_BYTES + NONCE_BYTES + 16 or not is_sealed(data) or data[len(MAGIC)] != FORMAT:
        raise DecryptionError(f"outbox message {name}: not a sealed outbox message")
    if header[len(MAGIC) + 1 :] != key.key_id:
        raise DecryptionError(f"outbox message {name}: sealed under another outbox key (replaced or set aside)")
    nonce = data[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return key.cipher.decrypt(nonce, data[HEADER_BYTES + NONCE_BYTES :], _binding(header, name))
    except InvalidTag:
        raise DecryptionError(f"outbox message {name}: authentication failed (altered or renamed)") from None


# --- the key file ---------------------------------------------------------------------


def _parse_key_file(text: str) -> tuple[bytes, int, bytes]:
    """(key id, master key version, wrapped key) or ``UnreadableKey``."""
    try:
        fields = json.loads(text)
        if fields["format"] != FORMAT:
            raise ValueError("unknown format")
        key_id = bytes.fromhex(fields["key_id"])
        version = int(fields["master_version"])
        wrapped = base64.b64decode(fields["wrapped"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise UnreadableKey(f"outbox key file is malformed ({exc.__class__.__name__})") from None
    if len(key_id) != KEY_ID_BYTES:
        raise UnreadableKey("outbox key file is malformed (key id)")
    return key_id, version, wrapped


def _key_file_text(key_id: bytes, version: int, wrapped: bytes) -> str:
    fields = {
        "format": FORMAT,
        "key_id": key_id.hex(),
        "master_version": version,
        "wrapped": base64.b64encode(wrapped).decode(),
    }
    return json.dumps(fields) + "\n"


def _read_key_file(path: Path) -> tuple[str, os.stat_result]:
    """The key file's text and identity (FileNotFoundError when there is none). A
    symlink is refused: the key must be this directory's own file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "r") as handle:
        return handle.read(), os.fstat(handle.fileno())


def _unwrap(provider: providers.MasterKeyProvider, text: str) -> OutboxKey:
    key_id, version, wrapped = _parse_key_file(text)
    # versions() raises KeyConfigurationError when the provider itself is unusable: that
    # is not this key's fault and must surface, never set the key aside.
    if version not in provider.versions():
        raise UnreadableKey(f"outbox key is wrapped by master key version {version}, which is missing")
    raw = provider.unwrap(version, wrapped, wrap_aad(key_id))  # DecryptionError when altered
    return OutboxKey(key_id, AESGCM(raw))


def load_key(directory: Path, provider: providers.MasterKeyProvider | None = None) -> OutboxKey | None:
    """The outbox key for reading; None when there is none or it does not open (logged:
    the sealed messages then cannot be shown, and are skipped)."""
    provider = provider or providers.get_provider()
    try:
        text, _ = _read_key_file(directory / KEY_FILE)
        return _unwrap(provider, text)
    except FileNotFoundError:
        return None
    except (DecryptionError, KeyConfigurationError, OSError) as exc:
        log.warning("outbox: the outbox key in %s does not open; sealed messages are not shown: %s", directory, exc)
        return None


@dataclass(frozen=True)
class KeyInfo:
    """What the outbox key file says (``vouch keys status``): ``key_id`` and
    ``master_version`` are None when the file cannot be parsed; ``problem`` says why the
    key does not open ("" when it opens); ``wrapped_at`` is the file's time (written
    when made or last re-wrapped)."""

    key_id: bytes | None
    master_version: int | None
    wrapped_at: float | None
    opens: bool
    problem: str


def key_info(directory: Path, provider: providers.MasterKeyProvider | None = None) -> KeyInfo | None:
    """The outbox key file of ``directory`` and whether it opens with ``provider``
    (one unwrap, no message is read); None when there is no key file. Only reads: a key
    that does not open is left where it is."""
    provider = provider or providers.get_provider()
    try:
        text, info = _read_key_file(Path(directory) / KEY_FILE)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return KeyInfo(None, None, None, False, "it is a symbolic link, which is not followed")
    try:
        key_id, version, _ = _parse_key_file(text)
    except UnreadableKey as exc:
        return KeyInfo(None, None, info.st_mtime, False, str(exc))
    try:
        _unwrap(provider, text)
    except DecryptionError as exc:
        return KeyInfo(key_id, version, info.st_mtime, False, str(exc))
    return KeyInfo(key_id, version, info.st_mtime, True, "")


def key_for_writing(directory: Path) -> OutboxKey:
    """The outbox key, made on the first message. A key that no longer opens (its master
    key version is gone, or the file was altered) is set aside and replaced: mail must
    keep flowing, and the messages it sealed are at most a week old."""
    provider = providers.get_provider()
    if not provider.versions():
        ensure_master_key()  # a new installation's first run, as company keys do
    path = directory / KEY_FILE
    for _attempt in range(3):
        try:
            text, info = _read_key_file(path)
        except FileNotFoundError:
            created = _create(path, provider)
            if created is not None:
                return created
            continue  # another process made it first: use that one
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            log.error("outbox: the outbox key is a symbolic link; it is set aside and a new one made")
            _set_aside(path, os.lstat(path))
            continue
        try:
            return _unwrap(provider, text)
        except DecryptionError as exc:
            log.error("outbox: the outbox key does not open (%s); it is set aside and a new one made", exc)
            _set_aside(path, info)
    raise UnreadableKey(f"the outbox key in {directory} keeps changing; is another process replacing it?")


def _create(path: Path, provider: providers.MasterKeyProvider) -> OutboxKey | None:
    """A new key, linked into place only if none exists (None when another process won)."""
    key_id, raw = secrets.token_bytes(KEY_ID_BYTES), secrets.token_bytes(KEY_BYTES)
    version, wrapped = provider.wrap(raw, wrap_aad(key_id))
    if not _write_private(path, _key_file_text(key_id, version, wrapped), replace=False):
        return None
    return OutboxKey(key_id, AESGCM(raw))


def _write_private(path: Path, text: str, *, replace: bool) -> bool:
    """Write ``text`` as ``path`` (0600) atomically: under a temporary name, then linked
    into place (fails if it exists: False) or, with ``replace``, renamed over it."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
            return True
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        temp.unlink(missing_ok=True)


def _set_aside(path: Path, read: os.stat_result) -> None:
    """Rename the key file read as ``read`` out of the way, unless another process has
    already replaced it (then the newer one stays)."""
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if (now.st_ino, now.st_dev) != (read.st_ino, read.st_dev):
        return
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    with contextlib.suppress(FileNotFoundError):  # another process set it aside first
        path.rename(path.with_name(f"{UNREADABLE_KEY_PREFIX}{stamp}-{secrets.token_hex(4)}"))


def rewrap(directory: Path, provider: providers.MasterKeyProvider, target: int) -> str:
    """Re-wrap the outbox key with master key version ``target`` (master rotation).
    Returns "absent", "current", "rewrapped", or "unreadable" (left as it is: the next
    message sets it aside and makes a new one)."""
    path = Path(directory) / KEY_FILE
    try:
        text, read = _read_key_file(path)
    except FileNotFoundError:
        return "absent"
    try:
        key_id, version, wrapped = _parse_key_file(text)
        if version >= target:
            return "current"
        if version not in provider.versions():
            raise UnreadableKey(f"outbox key is wrapped by master key version {version}, which is missing")
        raw = provider.unwrap(version, wrapped, wrap_aad(key_id))
    except DecryptionError as exc:
        log.error("outbox: the outbox key does not open and was not re-wrapped: %s", exc)
        return "unreadable"
    new_version, new_wrapped = provider.wrap(raw, wrap_aad(key_id))
    # Never put an older key back over one set aside and replaced meanwhile.
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return "absent"
    if (now.st_ino, now.st_dev) != (read.st_ino, read.st_dev):
        return "current"
    _write_private(path, _key_file_text(key_id, new_version, new_wrapped), replace=True)
    return "rewrapped"
