"""Encrypted files: uploads and generated reports, stored encrypted with the company's key.

Each file is encrypted in 64 KiB chunks, so neither writing nor reading ever holds a
whole file in memory. This is the STREAM construction (Hoang, Reyhanitabar, Rogaway,
Vizár 2015), as used by Tink's streaming AEAD and by age, built from `cryptography`'s
AES-256-GCM and HKDF; no maintained Python library offers it for our key hierarchy.

    header  "VCHF" | format 1 | data key version (4 bytes) | salt (16 bytes)
    chunks  AES-256-GCM(file key, nonce = chunk number (11 bytes) | last flag (1 byte),
                        aad = header), 64 KiB of plaintext each, the last one shorter

The file key is HKDF-SHA256(company data key, salt, company id and file name), so a
file copied to another name or company does not open; the chunk number in the nonce
detects reordering; the last flag detects truncation and appended data; the header,
authenticated with every chunk, cannot be altered.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.files import File
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible

from vouch.tenancy import provisioning
from vouch.tenancy.context import current
from vouch.vault import keyring
from vouch.vault.errors import KeyUnavailable
from vouch.vault.sealing import integrity_failure

MAGIC = b"VCHF"
FORMAT = 1
SALT_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + 4 + SALT_BYTES
CHUNK_BYTES = 64 * 1024
TAG_BYTES = 16
BLOCK_BYTES = CHUNK_BYTES + TAG_BYTES


def _file_cipher(company_id: uuid.UUID, name: str, version: int, salt: bytes) -> AESGCM:
    keys = keyring.keys_holding(company_id, version)  # loads them again if a rotation added it
    if keys is None:
        raise KeyUnavailable(f"data key version {version} of company {company_id} no longer exists")
    data_key = keys.data[version]
    info = b"vouch/file/v1\x00" + company_id.bytes + name.encode()
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(data_key))


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _rechunk(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Fixed-size chunks of the input, each with whether it is the last (maybe empty)."""
    buffer = bytearray()
    pending: bytes | None = None
    for piece in chunks:
        buffer += piece
        while len(buffer) >= CHUNK_BYTES:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:CHUNK_BYTES])
            del buffer[:CHUNK_BYTES]
    if pending is not None:
        if buffer:
            yield pending, False
            yield bytes(buffer), True
        else:
            yield pending, True
    else:
        yield bytes(buffer), True


def encrypt_stream(company_id: uuid.UUID, name: str, chunks: Iterable[bytes], out: BinaryIO) -> int:
    """Write ``chunks`` encrypted to ``out``; returns the plaintext size."""
    version = keyring.keys_for(company_id).current_version
    salt = os.urandom(SALT_BYTES)
    header = MAGIC + bytes((FORMAT,)) + version.to_bytes(4, "big") + salt
    cipher = _file_cipher(company_id, name, version, salt)
    out.write(header)
    size = 0
    for index, (plain, last) in enumerate(_rechunk(chunks)):
        out.write(cipher.encrypt(_nonce(index, last), plain, header))
        size += len(plain)
    return size


def header_version(source: BinaryIO) -> int:
    header = source.read(HEADER_BYTES)
    source.seek(0)
    return int.from_bytes(header[5:9], "big") if len(header) == HEADER_BYTES and header[:4] == MAGIC else 0


def decrypt_stream(company_id: uuid.UUID, name: str, source: BinaryIO) -> Iterator[bytes]:
    """The plaintext chunks of an encrypted file. Any alteration, truncation,
    reordering or move raises ``DecryptionError`` (and records a security event)
    before the chunk concerned is yielded."""
    what = f"file:{name}"
    header = source.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES or header[:4] != MAGIC or header[4] != FORMAT:
        integrity_failure(company_id, what, "not a Vouch encrypted file")
    version = int.from_bytes(header[5:9], "big")
    try:
        cipher = _file_cipher(company_id, name, version, header[9:])
    except KeyUnavailable:
        integrity_failure(company_id, what, f"encrypted with key version {version}, which this company does not have")
    block = source.read(BLOCK_BYTES)
    index = 0
    while True:
        following = source.read(BLOCK_BYTES) if len(block) == BLOCK_BYTES else b""
        last = not following
        if len(block) < TAG_BYTES:
            integrity_failure(company_id, what, "truncated")
        try:
            yield cipher.decrypt(_nonce(index, last), block, header)
        except InvalidTag:
            integrity_failure(
                company_id, what, f"chunk {index} failed authentication (altered, reordered, truncated or moved)"
            )
        if last:
            return
        block, index = following, index + 1


def plaintext_size(stored_size: int) -> int:
    body = stored_size - HEADER_BYTES
    chunks = max(1, -(-body // BLOCK_BYTES))
    return body - chunks * TAG_BYTES


class _IteratorReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes], on_close=None):
        self._chunks, self._buffer, self._on_close = chunks, b"", on_close

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        if not self.closed and self._on_close:
            self._on_close()
        super().close()


@deconstructible
class EncryptedStorage(Storage):
    """Django storage for the current company's files, encrypted at rest.

    Files live under the company's files directory in its region. There is no URL or
    filesystem path to the plaintext: a view streams ``storage.open(name)`` to a member
    allowed to see it."""

    def _root(self) -> Path:
        context = current()
        return provisioning.files_dir(context.company_id, context.region)

    def _full(self, name: str) -> Path:
        root = self._root().resolve()
        path = (root / name).resolve()
        if root not in path.parents:
            raise ValueError(f"file name {name!r} leaves the company's directory")
        return path

    def stored_path(self, name: str) -> Path:
        """Where the ciphertext of ``name`` lives in the current company's directory (to
        remove it after a deletion commits, or to check it at rest); never plaintext."""
        return self._full(name)

    def _save(self, name: str, content) -> str:
        path = self._full(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "xb") as out:
                encrypt_stream(current().company_id, name, content.chunks(CHUNK_BYTES), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return name

    def _open(self, name: str, mode: str = "rb") -> File:
        if mode not in ("r", "rb"):
            raise ValueError("encrypted files are written with save(), not opened for writing")
        raw = open(self._full(name), "rb")  # noqa: SIM115  (closed with the returned file)
        reader = _IteratorReader(decrypt_stream(current().company_id, name, raw), on_close=raw.close)
        return File(io.BufferedReader(reader, CHUNK_BYTES), name=name)

    def delete(self, name: str) -> None:
        self._full(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self._full(name).exists()

    def size(self, name: str) -> int:
        return plaintext_size(self._full(name).stat().st_size)

    def listdir(self, path: str):
        full = self._full(path) if path else self._root()
        entries = list(full.iterdir()) if full.exists() else []
        dirs = [e.name for e in entries if e.is_dir()]
        files = [e.name for e in entries if e.is_file() and not e.name.startswith(".")]
        return dirs, files

    def get_modified_time(self, name: str):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(self._full(name).stat().st_mtime, tz=UTC)

    def url(self, name):
        raise NotImplementedError("encrypted files have no URL; stream them through a view")

    def path(self, name):
        raise NotImplementedError("encrypted files have no plaintext path")

    def reencrypt(self, name: str) -> bool:
        """Re-encrypt one file under the current data key version (rotation). Readers that
        already opened the old file keep reading it (the rename swaps the directory
        entry only). Returns False when it was already current, or when the file was
        replaced or deleted meanwhile (the newer state is kept; rotation looks again)."""
        path = self._full(name)
        company_id = current().company_id
        with open(path, "rb") as source:
            if header_version(source) == keyring.keys_for(company_id).current_version:
                return False
            read = os.fstat(source.fileno())
            temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(temp, "xb") as out:
                    encrypt_stream(company_id, name, decrypt_stream(company_id, name, source), out)
                    out.flush()
                    os.fsync(out.fileno())
                # Never put back an older state over a file saved again or deleted while
                # this one was re-encrypted (saves and deletes swap or drop the entry).
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    return False
                if (now.st_ino, now.st_dev) != (read.st_ino, read.st_dev):
                    return False
                os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
        return True

    def walk(self) -> Iterator[str]:
        """Every stored file's name, relative to the company's directory."""
        root = self._root()
        if not root.exists():
            return
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(root).as_posix()


encrypted_storage = EncryptedStorage()
