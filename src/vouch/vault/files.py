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
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.files import File
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible

from vouch import objectstore
from vouch.core.context import current
from vouch.tenancy import provisioning, regions
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


def rechunk(chunks: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[tuple[bytes, bool]]:
    """Pieces of exactly ``size`` bytes (the last one shorter, maybe empty), each with
    whether it is the last; holds at most two pieces. Also used by backup sets."""
    buffer = bytearray()
    pending: bytes | None = None
    for piece in chunks:
        buffer += piece
        while len(buffer) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:size])
            del buffer[:size]
    if pending is not None:
        if buffer:
            yield pending, False
            yield bytes(buffer), True
        else:
            yield pending, True
    else:
        yield bytes(buffer), True


def encrypt_chunks(company_id: uuid.UUID, name: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The encrypted file, as a stream: the header, then one block per 64 KiB of ``chunks``.

    The key is looked up now, in the caller's thread: the stream may be consumed by
    another (boto3's upload threads), which must not open database connections."""
    version = keyring.keys_for(company_id).current_version
    salt = os.urandom(SALT_BYTES)
    header = MAGIC + bytes((FORMAT,)) + version.to_bytes(4, "big") + salt
    cipher = _file_cipher(company_id, name, version, salt)

    def blocks() -> Iterator[bytes]:
        yield header
        for index, (plain, last) in enumerate(rechunk(chunks)):
            yield cipher.encrypt(_nonce(index, last), plain, header)

    return blocks()


def encrypt_stream(company_id: uuid.UUID, name: str, chunks: Iterable[bytes], out: BinaryIO) -> int:
    """Write ``chunks`` encrypted to ``out``; returns the plaintext size."""
    blocks = encrypt_chunks(company_id, name, chunks)
    out.write(next(blocks))
    size = 0
    for block in blocks:
        out.write(block)
        size += len(block) - TAG_BYTES
    return size


def header_version(source: BinaryIO) -> int:
    header = source.read(HEADER_BYTES)
    source.seek(0)
    return version_of(header)


def version_of(header: bytes) -> int:
    """The data key version an encrypted file's header names; 0 if it is not one."""
    return int.from_bytes(header[5:9], "big") if len(header) >= HEADER_BYTES and header[:4] == MAGIC else 0


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


def _reader(chunks: Iterator[bytes]) -> BinaryIO:
    """A buffered file object over ``chunks`` (``read(n)`` returns n bytes until the end);
    closing it closes the iterator (an S3 response body, say)."""
    return io.BufferedReader(_IteratorReader(chunks, on_close=getattr(chunks, "close", None)), CHUNK_BYTES)


class _Disk:
    """A company's files as files under its directory (the embedded default)."""

    def __init__(self, root: Path):
        self.root = root

    def full(self, name: str) -> Path:
        root = self.root.resolve()
        path = (root / name).resolve()
        if root not in path.parents:
            raise ValueError(f"file name {name!r} leaves the company's directory")
        return path

    def save(self, company_id: uuid.UUID, name: str, chunks: Iterable[bytes]) -> None:
        path = self.full(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "xb") as out:
                encrypt_stream(company_id, name, chunks, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    def ciphertext(self, name: str) -> BinaryIO:
        return open(self.full(name), "rb")  # noqa: SIM115  (the caller closes it)

    def remover(self, name: str) -> Callable[[], None]:
        path = self.full(name)
        return lambda: path.unlink(missing_ok=True)

    def delete(self, name: str) -> None:
        self.full(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self.full(name).exists()

    def stored_size(self, name: str) -> int:
        return self.full(name).stat().st_size

    def modified(self, name: str):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(self.full(name).stat().st_mtime, tz=UTC)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        full = self.full(path) if path else self.root
        entries = list(full.iterdir()) if full.exists() else []
        dirs = [e.name for e in entries if e.is_dir()]
        files = [e.name for e in entries if e.is_file() and not e.name.startswith(".")]
        return dirs, files

    def walk(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def version(self, name: str) -> int:
        with open(self.full(name), "rb") as source:
            return header_version(source)

    def reencrypt(self, company_id: uuid.UUID, name: str) -> bool:
        path = self.full(name)
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


class _Bucket:
    """A company's files as objects under ``<company id>/`` in its region's bucket."""

    def __init__(self, store: objectstore.S3Store, company_id: uuid.UUID):
        self.store, self.prefix = store, f"{company_id}/"

    def key(self, name: str) -> str:
        key = self.prefix + name
        objectstore._check_key(key)  # no "..", no absolute names: never another company's prefix
        return key

    def save(self, company_id: uuid.UUID, name: str, chunks: Iterable[bytes]) -> None:
        # Streamed: encrypted 64 KiB at a time into a multipart upload; visible only once complete.
        self.store.put(self.key(name), encrypt_chunks(company_id, name, chunks))

    def _open(self, name: str) -> tuple[str, Iterator[bytes]]:
        try:
            return self.store.open_tagged(self.key(name))
        except objectstore.ObjectMissing:
            raise FileNotFoundError(name) from None

    def ciphertext(self, name: str) -> BinaryIO:
        return _reader(self._open(name)[1])

    def remover(self, name: str) -> Callable[[], None]:
        store, key = self.store, self.key(name)
        return lambda: store.delete(key)

    def delete(self, name: str) -> None:
        self.store.delete(self.key(name))

    def exists(self, name: str) -> bool:
        return self.store.exists(self.key(name))

    def stored_size(self, name: str) -> int:
        try:
            return self.store.size(self.key(name))
        except objectstore.ObjectMissing:
            raise FileNotFoundError(name) from None

    def modified(self, name: str):
        key = self.key(name)
        for info in self.store.list(key):
            if info.key == key:
                return info.modified
        raise FileNotFoundError(name)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        base = self.prefix + (path.strip("/") + "/" if path.strip("/") else "")
        dirs, files = set(), []
        for info in self.store.list(base):
            first, _, rest = info.key[len(base) :].partition("/")
            if rest:
                dirs.add(first)
            else:
                files.append(first)
        return sorted(dirs), files

    def walk(self) -> Iterator[str]:
        for info in self.store.list(self.prefix):
            yield info.key[len(self.prefix) :]

    def version(self, name: str) -> int:
        with self.ciphertext(name) as source:
            return version_of(source.read(HEADER_BYTES))

    def reencrypt(self, company_id: uuid.UUID, name: str) -> bool:
        # Compare-and-swap on the ETag read: the re-encrypted object is written with
        # If-Match, so a file deleted or saved again meanwhile keeps its newer state.
        etag, chunks = self._open(name)
        with _reader(chunks) as source:
            header = source.read(HEADER_BYTES)
            if version_of(header) == keyring.keys_for(company_id).current_version:
                return False
            plain = decrypt_stream(company_id, name, _reader(_prepend(header, source)))
            try:
                self.store.put_if_match(self.key(name), encrypt_chunks(company_id, name, plain), etag)
            except objectstore.PreconditionFailed:
                return False
        return True


def _prepend(first: bytes, source: BinaryIO) -> Iterator[bytes]:
    yield first
    while block := source.read(CHUNK_BYTES):
        yield block


_stores: dict[str, objectstore.S3Store] = {}
_stores_lock = threading.Lock()


def bucket_store(url: str) -> objectstore.S3Store:
    """One store (one boto3 client: thread-safe, keeps its connections) per bucket URL."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = objectstore.open_store(url)  # type: ignore[assignment]  # typing debt: an Optional not narrowed here
        return store  # type: ignore[return-value]  # typing debt: an Optional not narrowed here


def backend(company_id: uuid.UUID, region_name: str) -> _Disk | _Bucket:
    """Where ``company_id``'s files are: its region's bucket, or its directory on disk."""
    region = regions.get(region_name)
    if region.files_in_bucket:
        return _Bucket(bucket_store(region.files_url), uuid.UUID(str(company_id)))
    return _Disk(provisioning.files_dir(company_id, region_name))


def purge(company_id: uuid.UUID, region_name: str) -> None:
    """Remove every file of a company: its directory, or every object under its prefix."""
    region = regions.get(region_name)
    if region.files_in_bucket:
        bucket_store(region.files_url).delete_prefix(f"{uuid.UUID(str(company_id))}/")


@deconstructible
class EncryptedStorage(Storage):
    """Django storage for the current company's files, encrypted at rest.

    Files live in the company's region: under its files directory on the embedded
    default, or under ``<company id>/`` in the region's S3-compatible bucket
    (``VOUCH_REGION_<NAME>_FILES_URL``); the same ciphertext either way, streamed in and
    out. There is no URL or filesystem path to the plaintext: a view streams
    ``storage.open(name)`` to a member allowed to see it. A bucket that cannot be
    reached raises ``vouch.objectstore.StoreUnavailable`` (a 503 page)."""

    def _backend(self) -> _Disk | _Bucket:
        context = current()
        return backend(context.company_id, context.region)

    def stored_path(self, name: str) -> Path:
        """Where the ciphertext of ``name`` lives on disk (embedded default only; tests
        check files at rest with it). Code that must work on a bucket too uses
        :meth:`remover` and :meth:`ciphertext`."""
        store = self._backend()
        if not isinstance(store, _Disk):
            raise NotImplementedError("this company's files are in a bucket: use ciphertext() or remover()")
        return store.full(name)

    def ciphertext(self, name: str) -> BinaryIO:
        """The stored (encrypted) bytes of ``name``, as a file object: never plaintext."""
        return self._backend().ciphertext(name)

    def remover(self, name: str) -> Callable[[], None]:
        """A function that removes ``name``, bound now to the current company (to run
        after a deletion commits, when the context may be gone)."""
        return self._backend().remover(name)

    def _save(self, name: str, content) -> str:
        self._backend().save(current().company_id, name, content.chunks(CHUNK_BYTES))
        return name

    def _open(self, name: str, mode: str = "rb") -> File:
        if mode not in ("r", "rb"):
            raise ValueError("encrypted files are written with save(), not opened for writing")
        raw = self._backend().ciphertext(name)
        reader = _IteratorReader(decrypt_stream(current().company_id, name, raw), on_close=raw.close)
        return File(io.BufferedReader(reader, CHUNK_BYTES), name=name)

    def delete(self, name: str) -> None:
        self._backend().delete(name)

    def exists(self, name: str) -> bool:
        return self._backend().exists(name)

    def size(self, name: str) -> int:
        return plaintext_size(self._backend().stored_size(name))

    def listdir(self, path: str):
        return self._backend().listdir(path)

    def get_modified_time(self, name: str):
        return self._backend().modified(name)

    def url(self, name):
        raise NotImplementedError("encrypted files have no URL; stream them through a view")

    def path(self, name):
        raise NotImplementedError("encrypted files have no plaintext path")

    def stored_version(self, name: str) -> int:
        """The data key version ``name`` is encrypted under (0: not a Vouch encrypted
        file); ``FileNotFoundError`` if it is gone."""
        return self._backend().version(name)

    def reencrypt(self, name: str) -> bool:
        """Re-encrypt one file under the current data key version (rotation). Readers that
        already opened the old file keep reading it (on disk the rename swaps the
        directory entry only; an S3 GET reads the object it started on). Returns False
        when it was already current, or when the file was replaced or deleted meanwhile
        (the newer state is kept; rotation looks again): compare-and-swap on the inode
        on disk, on the ETag (If-Match) in a bucket."""
        return self._backend().reencrypt(current().company_id, name)

    def walk(self) -> Iterator[str]:
        """Every stored file's name, relative to the company's directory or prefix."""
        yield from self._backend().walk()


encrypted_storage = EncryptedStorage()
