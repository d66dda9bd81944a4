"""Master key providers: where the keys that wrap every company's data keys live.

A provider holds numbered master key versions and wraps/unwraps data keys with them;
callers (``vault.keyring``, ``vault.rotation``) never see a master key. The embedded
default keeps them as files in ``VOUCH_KEYS_DIR`` (default ``VOUCH_DATA_DIR/keys``),
never in a database. ``VOUCH_MASTER_KEYS`` supplies them from the environment instead,
and ``VOUCH_KEY_PROVIDER`` may name any class with this interface, such as an adapter
for a cloud KMS whose ``wrap``/``unwrap`` call the service.

Wrapping is AES-256-GCM with a fresh 96-bit nonce under the master key, the wrapped
key's identity (company, purpose, version) as associated data, so a wrapped key copied
onto another company's row does not unwrap.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils.module_loading import import_string

from vouch.vault.errors import DecryptionError, KeyConfigurationError

KEY_BYTES = 32
NONCE_BYTES = 12
_FILE_NAME = re.compile(r"^master-(\d{6})\.key$")
# A running process re-reads the key directory at least this often (and at once when it
# sees the directory change), so versions added or retired by `vouch keys rotate-master`
# in another process reach it within this bound; rotation waits it out before retiring.
RELOAD_SECONDS = 1.0


class MasterKeyProvider(Protocol):
    """The interface every provider implements (a KMS adapter included)."""

    def versions(self) -> list[int]: ...

    def current_version(self) -> int: ...

    def wrap(self, key: bytes, aad: bytes) -> tuple[int, bytes]: ...

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes: ...

    def create_version(self) -> int: ...

    def retire_version(self, version: int) -> None: ...

    def describe(self) -> str: ...


class _LocalKeys:
    """Wrapping with master keys held in this process (file and environment providers)."""

    def _keys(self) -> dict[int, bytes]:
        raise NotImplementedError

    def reload(self) -> None:
        """Forget keys read earlier (nothing to forget for keys fixed at start-up)."""

    def versions(self) -> list[int]:
        return sorted(self._keys())

    def current_version(self) -> int:
        versions = self.versions()
        if not versions:
            raise KeyConfigurationError(f"No master key in {self.describe()}.")  # type: ignore[attr-defined]  # a mixin: the providers that use it define describe()
        return versions[-1]

    def wrap(self, key: bytes, aad: bytes) -> tuple[int, bytes]:
        version = self.current_version()
        nonce = os.urandom(NONCE_BYTES)
        return version, nonce + AESGCM(self._keys()[version]).encrypt(nonce, key, aad)

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        master = self._keys().get(version)
        if master is None:
            # Re-wrapped by a rotation in another process a moment ago: read the keys again.
            self.reload()
            master = self._keys().get(version)
        if master is None:
            raise KeyConfigurationError(
                f"Master key version {version} is needed but missing from {self.describe()}; "  # type: ignore[attr-defined]  # a mixin: the providers that use it define describe()
                "restore it from the key backup (see docs/operations/production.md, 'Keys')."
            )
        try:
            return AESGCM(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise DecryptionError(
                f"A data key did not unwrap with master key version {version}: the key file was "
                "replaced or the wrapped key was altered or moved."
            ) from exc


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode() + b"==")
    except ValueError as exc:
        raise KeyConfigurationError(f"{where} is not base64.") from exc
    if len(key) != KEY_BYTES:
        raise KeyConfigurationError(f"{where} must hold a {KEY_BYTES * 8}-bit key, found {len(key) * 8} bits.")
    return key


def _encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


class FileKeyProvider(_LocalKeys):
    """Master keys as files ``master-000001.key`` (base64, mode 0600) in a 0700 directory.

    Refuses (``KeyConfigurationError``) a directory or key file that group or others
    may read, write or enter, one owned by another user, and an unreadable or malformed
    key. Retiring a version renames its file to ``.retired``: no longer loaded, but left
    for the operator to delete once no backup of the control database needs it."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self._cache: dict[int, bytes] | None = None
        self._loaded_stamp: tuple[int, int] | None = None
        self._loaded_at = 0.0

    def describe(self) -> str:
        return f"key directory {self.directory}"

    def _check_mode(self, path: Path, *, is_dir: bool) -> None:
        try:
            info = path.stat()
        except PermissionError as exc:
            raise KeyConfigurationError(f"Cannot read {path}: {exc.strerror}.") from exc
        if is_dir and not stat.S_ISDIR(info.st_mode):
            raise KeyConfigurationError(f"{path} must be a directory.")
        if info.st_mode & 0o077:
            wanted = "0700" if is_dir else "0600"
            raise KeyConfigurationError(
                f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"Vouch refuses to use it. Run: chmod {wanted} {path}"
            )
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise KeyConfigurationError(f"{path} belongs to another user (uid {info.st_uid}); Vouch refuses to use it.")

    def _keys(self) -> dict[int, bytes]:
        # Reloaded when the directory changes, and every RELOAD_SECONDS in any case (its
        # modification time is coarse): a running worker must unwrap keys that `vouch keys
        # rotate-master` in another process re-wrapped with a new version, and wrap new
        # keys with that version, not with one about to be retired.
        stamp = self._stamp()
        now = time.monotonic()
        stale = stamp is None or stamp != self._loaded_stamp or now - self._loaded_at > RELOAD_SECONDS
        if self._cache is None or stale:
            self._cache = self._load()
            self._loaded_stamp, self._loaded_at = stamp, now
        return self._cache

    def _stamp(self) -> tuple[int, int] | None:
        """The directory's identity and modification time (a file added, renamed or
        removed changes it); None when it cannot be read, so that loading reports why."""
        try:
            info = os.stat(self.directory)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns

    def _load(self) -> dict[int, bytes]:
        if not self.directory.exists():
            return {}
        self._check_mode(self.directory, is_dir=True)
        keys: dict[int, bytes] = {}
        try:
            entries = sorted(self.directory.iterdir())
        except OSError as exc:  # e.g. a directory Vouch's account may not list
            raise KeyConfigurationError(f"Cannot read {self.directory}: {exc.strerror or exc}.") from exc
        for path in entries:
            match = _FILE_NAME.match(path.name)
            if not match:
                continue
            try:
                self._check_mode(path, is_dir=False)
                text = path.read_text()
            except FileNotFoundError:
                continue  # retired (renamed) by a rotation while this directory was read
            except OSError as exc:
                raise KeyConfigurationError(f"Cannot read master key {path}: {exc.strerror or exc}.") from exc
            keys[int(match.group(1))] = _decode_key(text, f"Master key {path}")
        return keys

    def reload(self) -> None:
        self._cache = None

    def create_version(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._check_mode(self.directory, is_dir=True)
        self.reload()
        version = max([0, *self.versions(), *self._retired_versions()]) + 1
        path = self.directory / f"master-{version:06d}.key"
        # Written under a name no process loads, then linked into place: other processes
        # re-read the directory at any moment and must never see a half-written key, and
        # link (unlike rename) fails if another process created this version meanwhile.
        temp = self.directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(_encode_key(secrets.token_bytes(KEY_BYTES)) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        self.reload()
        return version

    def _retired_versions(self) -> list[int]:
        if not self.directory.exists():
            return []
        return [
            int(m.group(1))
            for p in self.directory.iterdir()
            if (m := _FILE_NAME.match(p.name.removesuffix(".retired")))
        ]

    def retire_version(self, version: int) -> None:
        path = self.directory / f"master-{version:06d}.key"
        if path.exists():
            path.rename(path.with_name(path.name + ".retired"))
        self.reload()


class EnvironmentKeyProvider(_LocalKeys):
    """Master keys from ``VOUCH_MASTER_KEYS``: ``version:base64key`` pairs, comma
    separated; the highest version wraps new keys. To rotate, add a version, restart,
    run ``vouch keys rotate-master``, then remove the old pair."""

    def __init__(self, value: str):
        self._parsed: dict[int, bytes] = {}
        for index, item in enumerate(p for p in value.split(",") if p.strip()):
            version, sep, encoded = item.strip().partition(":")
            if not sep or not version.isdigit():
                raise KeyConfigurationError(f"VOUCH_MASTER_KEYS item {index + 1} must look like '1:<base64 key>'.")
            self._parsed[int(version)] = _decode_key(encoded, f"VOUCH_MASTER_KEYS version {version}")

    def describe(self) -> str:
        return "VOUCH_MASTER_KEYS"

    def _keys(self) -> dict[int, bytes]:
        return self._parsed

    def create_version(self) -> int:
        raise KeyConfigurationError(
            "Master keys come from VOUCH_MASTER_KEYS: add a new 'version:key' pair there "
            "(generate one with `vouch keys generate`), restart, then run rotate-master again."
        )

    def retire_version(self, version: int) -> None:
        """Nothing to delete here: the operator removes the pair from the environment."""


def generate_key_text() -> str:
    return _encode_key(secrets.token_bytes(KEY_BYTES))


@functools.cache
def get_provider() -> MasterKeyProvider:
    """The configured provider (one per process; ``reset`` after changing settings)."""
    name = settings.VOUCH_KEY_PROVIDER
    if name == "file":
        return FileKeyProvider(settings.VOUCH_KEYS_DIR)
    if name == "env":
        return EnvironmentKeyProvider(settings.VOUCH_MASTER_KEYS)
    try:
        return import_string(name)()
    except ImportError as exc:
        raise KeyConfigurationError(f"VOUCH_KEY_PROVIDER {name!r} cannot be imported: {exc}") from exc


def reset() -> None:
    get_provider.cache_clear()
