"""Where the key store keeps its small files: a directory, or a bucket.

The key store (``vouch.vault.keystore``) holds a few kinds of small named blobs
(``companies/<id>.kek``, ``companies/<id>.purged``, ``backup-control.key``); each KEK
and key is already wrapped by the master key provider, so neither place alone opens
anything. This module only stores and finds them, in one of two places named by
``VOUCH_KEY_STORE_URL``:

- a directory (the default, ``VOUCH_KEYS_DIR``): 0700 directories, 0600 files, symbolic
  links and files others may read refused; each file written under a temporary name,
  flushed to disk, then linked (create) or renamed (replace) into place, and the
  directory synced, so a crash leaves the old file or the new one;
- an S3-compatible bucket (``s3://bucket/prefix?endpoint=...&region=...``): the same
  blobs as objects, so several app servers share one key store and keep no state. A
  new blob is created with ``If-None-Match: *`` (refused if the name exists) and a
  re-wrap replaces one with ``If-Match`` (refused if it changed or went meanwhile).

Both raise ``FileNotFoundError`` for a missing name (as a directory would), and
``KeyStoreUnavailable`` when the place cannot be used: a key store that cannot be read
is never taken for one without the key.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from vouch import objectstore
from vouch.vault.errors import KeyConfigurationError


class KeyStoreUnavailable(KeyConfigurationError):
    """The key store could not be read or written (a bucket unreachable, a directory
    unreadable): the operation stops, nothing is taken as absent."""


class KeyBlobs(Protocol):
    """Small named blobs (names are ``/``-separated relative paths)."""

    def describe(self, name: str = "") -> str:
        """Where ``name`` (or the store itself) is, for messages."""

    def read(self, name: str) -> tuple[bytes, str]:
        """(the blob, a tag naming this version of it); ``FileNotFoundError``."""

    def create(self, name: str, data: bytes) -> bool:
        """Store ``data`` as ``name`` unless the name exists (then False: another
        process made it first, and what it made is kept)."""

    def replace(self, name: str, data: bytes, *, if_tag: str | None = None) -> bool:
        """Store ``data`` as ``name``; with ``if_tag``, only if ``name`` is still the
        version read with that tag (else False: it changed or was removed)."""

    def delete(self, name: str) -> bool:
        """Remove ``name``; True if it was there. Idempotent."""

    def exists(self, name: str) -> bool: ...

    def names(self, folder: str) -> list[str]:
        """The names of the blobs directly in ``folder`` (without the folder)."""


# --- a directory ---------------------------------------------------------------------------


def sync_dir(directory: Path) -> None:
    """Make a name added, renamed or removed in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = directory.stat()
    if info.st_mode & 0o077:
        raise KeyConfigurationError(
            f"{directory} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"Vouch refuses to use it. Run: chmod 0700 {directory}"
        )
    return directory


def write_file(path: Path, data: bytes | str, *, replace: bool) -> bool:
    """Write ``data`` as ``path`` (0600) atomically: a temporary file, flushed to disk,
    then linked into place (False if the name exists: someone else made it first) or,
    with ``replace``, renamed over it."""
    directory = private_dir(path.parent)
    temp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
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
    sync_dir(directory)
    return True


def read_file(path: Path) -> tuple[bytes, str]:
    """A key file's bytes and a tag of this version of it (``FileNotFoundError`` if there
    is none). A symbolic link, or a file others may read, is refused: the key must be
    this store's own file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise KeyConfigurationError(f"Cannot read key file {path}: {exc.strerror or exc}.") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_mode & 0o077:
            raise KeyConfigurationError(
                f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); Vouch refuses to use it. "
                f"Run: chmod 0600 {path}"
            )
        return handle.read(), _file_tag(info)


def _file_tag(info: os.stat_result) -> str:
    # Every write is a new file renamed into place: a new inode, so a new tag.
    return f"{info.st_ino}:{info.st_mtime_ns}:{info.st_size}"


class DirectoryKeyBlobs:
    """Blobs as files under ``root`` (``VOUCH_KEYS_DIR`` by default)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / objectstore.check_key(name)

    def describe(self, name: str = "") -> str:
        return str(self.path(name)) if name else str(self.root)

    def read(self, name: str) -> tuple[bytes, str]:
        return read_file(self.path(name))

    def create(self, name: str, data: bytes) -> bool:
        return write_file(self.path(name), data, replace=False)

    def replace(self, name: str, data: bytes, *, if_tag: str | None = None) -> bool:
        path = self.path(name)
        if if_tag is not None:
            # Not atomic with the rename below (a directory has no compare-and-swap);
            # the key store re-checks tombstones after a re-wrap, which is what matters.
            try:
                if _file_tag(path.lstat()) != if_tag:
                    return False
            except FileNotFoundError:
                return False
        return write_file(path, data, replace=True)

    def delete(self, name: str) -> bool:
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        sync_dir(path.parent)
        return True

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def names(self, folder: str) -> list[str]:
        directory = self.path(folder)
        try:
            return [
                entry.name
                for entry in os.scandir(directory)
                if not entry.name.startswith(".") and not entry.is_dir(follow_symlinks=False)
            ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyStoreUnavailable(f"Cannot read {directory}: {exc.strerror or exc}.") from exc


# --- a bucket -------------------------------------------------------------------------------


class BucketKeyBlobs:
    """Blobs as objects in an S3-compatible bucket, under the URL's prefix."""

    def __init__(self, store: objectstore.S3Store):
        self.store = store

    def describe(self, name: str = "") -> str:
        where = self.store.describe()
        return f"{name} in {where}" if name else where

    def _unavailable(self, exc: objectstore.StoreError) -> KeyStoreUnavailable:
        return KeyStoreUnavailable(f"The key store ({self.store.describe()}) cannot be used: {exc}")

    def read(self, name: str) -> tuple[bytes, str]:
        try:
            tag, chunks = self.store.open_tagged(name)
            return b"".join(chunks), tag
        except objectstore.ObjectMissing:
            raise FileNotFoundError(self.describe(name)) from None
        except objectstore.StoreUnavailable as exc:
            raise self._unavailable(exc) from exc

    def create(self, name: str, data: bytes) -> bool:
        try:
            self.store.put_if_absent(name, [data])
        except objectstore.PreconditionFailed:
            return False
        except objectstore.StoreUnavailable as exc:
            raise self._unavailable(exc) from exc
        return True

    def replace(self, name: str, data: bytes, *, if_tag: str | None = None) -> bool:
        try:
            if if_tag is None:
                self.store.put(name, [data])
            else:
                self.store.put_if_match(name, [data], if_tag)
        except objectstore.PreconditionFailed:
            return False
        except objectstore.StoreUnavailable as exc:
            raise self._unavailable(exc) from exc
        return True

    def delete(self, name: str) -> bool:
        try:
            there = self.store.exists(name)
            self.store.delete(name)  # S3 deletes idempotently and does not say whether it was there
        except objectstore.StoreUnavailable as exc:
            raise self._unavailable(exc) from exc
        return there

    def exists(self, name: str) -> bool:
        try:
            return self.store.exists(name)
        except objectstore.StoreUnavailable as exc:
            raise self._unavailable(exc) from exc

    def names(self, folder: str) -> list[str]:
        prefix = folder.strip("/") + "/"
        try:
            infos = list(self.store.list(prefix))
        except objectstore.StoreUnavailable as exc:
            raise self._unavailable(exc) from exc
        return [info.key[len(prefix) :] for info in infos if "/" not in info.key[len(prefix) :]]


# --- which one ------------------------------------------------------------------------------

_opened: dict[str, KeyBlobs] = {}
_lock = threading.Lock()


def open_key_blobs(url: str) -> KeyBlobs:
    """The key store ``url`` names: an ``s3://`` URL, or a directory (a path or
    ``file://`` URL). One per URL, kept: a bucket's client is thread-safe and keeps its
    connections."""
    with _lock:
        blobs = _opened.get(url)
        if blobs is None:
            store = objectstore.open_store(url)  # checks the URL
            if isinstance(store, objectstore.S3Store):
                blobs = BucketKeyBlobs(store)
            else:  # the directory as named (not resolved: as VOUCH_KEYS_DIR always was)
                parts = urlsplit(url)
                blobs = DirectoryKeyBlobs(unquote(parts.path) if parts.scheme == "file" else url)
            _opened[url] = blobs
        return blobs
