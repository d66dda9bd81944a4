"""The backup set format: names in the target, keys, and the encrypted objects and manifest.

A set is a directory of objects in a backup target (``vouch.objectstore``)::

    companies/<company id>/<UTC time>-<set id>/objects/0      the database snapshot
    companies/<company id>/<UTC time>-<set id>/objects/1..n   the company's files
    companies/<company id>/<UTC time>-<set id>/manifest       written last
    control/<UTC time>-<set id>/objects/0                     the control database
    control/<UTC time>-<set id>/manifest

UTC time is ``YYYYMMDDTHHMMSSZ`` (the set's time, whole seconds). A set without its
manifest is incomplete: readers ignore it and retention removes it.

Keys. The base key is ``vault.backup_keys.company_backup_key(company id)`` or
``control_backup_key()`` (never stored with the backups). Each set has a random 16-byte
salt; its key is ``HKDF-SHA256(base, salt, info = "vouch/backup-set/v1" | binding)``
where the binding is the canonical JSON of format, scope, company id, region, set id
and time. From it, HKDF gives one key for the manifest and one for the objects. A set
therefore opens only as what it was made: another company's key, or another name, id
or time, gives another key, and nothing authenticates.

Objects (STREAM, as vault/files.py, with 1 MiB chunks)::

    header  "VCHO" | format 1 | set id (16 bytes) | object number (4 bytes)
    chunks  AES-256-GCM(object key, nonce = object number (4) | chunk number (7) | last (1),
                        aad = header)

so an object moved to another position or set, reordered, truncated or extended fails
authentication, and is named in the error.

Manifest::

    "VCHM" | format 1 | header length (4 bytes) | header (JSON: the binding and the salt)
    | nonce (12) | AES-256-GCM(manifest key, nonce, manifest JSON, aad = everything before)

Without the keys a set shows its name (company id, time, set id), the number and sizes
of its objects, and the header's scope and region; nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vouch.vault import backup_keys
from vouch.vault.errors import KeyUnavailable
from vouch.vault.files import rechunk

FORMAT = 1
OBJECT_MAGIC = b"VCHO"
MANIFEST_MAGIC = b"VCHM"
OBJECT_HEADER_BYTES = len(OBJECT_MAGIC) + 1 + 16 + 4
CHUNK_BYTES = 1024 * 1024
TAG_BYTES = 16
BLOCK_BYTES = CHUNK_BYTES + TAG_BYTES
SALT_BYTES = 16
NONCE_BYTES = 12
TIME_FORMAT = "%Y%m%dT%H%M%SZ"

COMPANY = "company"
CONTROL = "control"

LOCATION = re.compile(
    r"^(?:companies/(?P<company>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|control)"
    r"/(?P<time>\d{8}T\d{6}Z)-(?P<set>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


class BackupError(Exception):
    """Base of the backup sets' errors; the message is safe to show an operator."""


class BackupDamaged(BackupError):
    """A set, or one of its objects, is not what was written: altered, truncated, swapped
    between companies, renamed (replayed as another time), or missing a part.
    ``what`` names the part ("manifest", "object 3 (file attachments/x.pdf)")."""

    def __init__(self, what: str, detail: str):
        self.what, self.detail = what, detail
        super().__init__(f"{what}: {detail}")


class BackupIncomplete(BackupDamaged):
    """The set has no manifest: it was never finished (or its manifest was removed)."""


class BackupKeyMissing(BackupError):
    """The key to open this set is not in this installation (a purged company's, or the
    key store is not the one the backup was made with)."""


# --- names --------------------------------------------------------------------


def company_prefix(company_id: uuid.UUID | str) -> str:
    return f"companies/{uuid.UUID(str(company_id))}/"


def control_prefix() -> str:
    return "control/"


def set_time(moment: datetime) -> datetime:
    """A set's time: UTC, whole seconds (what its name can hold)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def location_for(scope: str, company_id, taken_at: datetime, set_id: uuid.UUID) -> str:
    prefix = company_prefix(company_id) if scope == COMPANY else control_prefix()
    return f"{prefix}{set_time(taken_at).strftime(TIME_FORMAT)}-{set_id}"


@dataclass(frozen=True)
class Location:
    location: str
    scope: str
    company_id: uuid.UUID | None
    taken_at: datetime
    set_id: uuid.UUID


def parse_location(location: str) -> Location | None:
    """What a set's name says (scope, company, time, id); None if it is not a set name."""
    match = LOCATION.match(location.strip("/"))
    if match is None:
        return None
    company = match["company"]
    return Location(
        location=location.strip("/"),
        scope=COMPANY if company else CONTROL,
        company_id=uuid.UUID(company) if company else None,
        taken_at=datetime.strptime(match["time"], TIME_FORMAT).replace(tzinfo=UTC),
        set_id=uuid.UUID(match["set"]),
    )


def manifest_key(location: str) -> str:
    return f"{location}/manifest"


def object_key(location: str, number: int) -> str:
    return f"{location}/objects/{number}"


# --- keys ---------------------------------------------------------------------


def binding(scope: str, company_id, region: str, set_id: uuid.UUID, taken_at: datetime) -> dict:
    """What a set is, as its key and manifest are bound to it."""
    return {
        "format": FORMAT,
        "scope": scope,
        "company_id": str(uuid.UUID(str(company_id))) if company_id else "",
        "region": region,
        "set_id": str(set_id),
        "taken_at": set_time(taken_at).strftime(TIME_FORMAT),
    }


def _canonical(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SetKeys:
    manifest: AESGCM
    objects: AESGCM


def set_keys(base_key: bytes, bound: dict, salt: bytes) -> SetKeys:
    set_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"vouch/backup-set/v1\x00" + _canonical(bound)
    ).derive(base_key)

    def sub(purpose: bytes) -> AESGCM:
        return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(set_key))

    return SetKeys(manifest=sub(b"manifest"), objects=sub(b"objects"))


def base_key(scope: str, company_id) -> bytes:
    """The installation's key for this scope; ``BackupKeyMissing`` if it has none."""
    try:
        if scope == CONTROL:
            return backup_keys.control_backup_key()
        return backup_keys.company_backup_key(company_id)
    except KeyUnavailable as exc:
        whose = "the control database" if scope == CONTROL else f"company {company_id}"
        raise BackupKeyMissing(
            f"the backup key of {whose} is not in this installation ({exc}); a purged company's backups "
            "cannot be opened, by design"
        ) from None


# --- objects ------------------------------------------------------------------


def object_header(set_id: uuid.UUID, number: int) -> bytes:
    return OBJECT_MAGIC + bytes((FORMAT,)) + set_id.bytes + number.to_bytes(4, "big")


def _nonce(number: int, index: int, last: bool) -> bytes:
    return number.to_bytes(4, "big") + index.to_bytes(7, "big") + (b"\x01" if last else b"\x00")


@dataclass
class Digest:
    """Size and SHA-256 of the plaintext that went through an object."""

    size: int = 0
    sha256: str = ""


def encrypt_object(keys: SetKeys, set_id: uuid.UUID, number: int, chunks: Iterable[bytes], digest: Digest):
    """The stored bytes of object ``number``, as a stream; fills ``digest`` as it goes."""
    header = object_header(set_id, number)
    hasher = hashlib.sha256()
    yield header
    for index, (plain, last) in enumerate(rechunk(chunks, CHUNK_BYTES)):
        hasher.update(plain)
        digest.size += len(plain)
        yield keys.objects.encrypt(_nonce(number, index, last), plain, header)
    digest.sha256 = hasher.hexdigest()


def stored_size(plain_size: int) -> int:
    """Bytes an object of ``plain_size`` takes in the target."""
    chunks = max(1, -(-plain_size // CHUNK_BYTES))
    return OBJECT_HEADER_BYTES + plain_size + chunks * TAG_BYTES


def decrypt_object(
    keys: SetKeys, set_id: uuid.UUID, number: int, stored: Iterable[bytes], what: str
) -> Iterator[bytes]:
    """The plaintext chunks of a stored object, each yielded only once it authenticated.
    Raises ``BackupDamaged(what, ...)`` on any alteration, truncation or move."""
    header = object_header(set_id, number)
    stream = iter(stored)
    head = bytearray()
    for piece in stream:
        head += piece
        if len(head) >= OBJECT_HEADER_BYTES:
            break
    if bytes(head[:OBJECT_HEADER_BYTES]) != header:
        if len(head) < OBJECT_HEADER_BYTES:
            raise BackupDamaged(what, "truncated (shorter than its header)")
        raise BackupDamaged(what, "its header does not name this set and position (moved from another set?)")
    rest = bytes(head[OBJECT_HEADER_BYTES:])

    def body() -> Iterator[bytes]:
        if rest:
            yield rest
        yield from stream

    for index, (block, last) in enumerate(rechunk(body(), BLOCK_BYTES)):
        if len(block) < TAG_BYTES:
            raise BackupDamaged(what, f"truncated in chunk {index}")
        try:
            yield keys.objects.decrypt(_nonce(number, index, last), block, header)
        except InvalidTag:
            raise BackupDamaged(
                what, f"chunk {index} failed authentication (altered, truncated, reordered or from another set)"
            ) from None


# --- manifest -----------------------------------------------------------------


def new_set_keys(base: bytes, bound: dict) -> tuple[bytes, SetKeys]:
    """A new set's random salt and keys (the objects are written with them first, the
    manifest last with :func:`seal_with`)."""
    salt = os.urandom(SALT_BYTES)
    return salt, set_keys(base, bound, salt)


def seal_with(keys: SetKeys, bound: dict, salt: bytes, manifest: dict) -> bytes:
    header = _canonical(bound | {"salt": salt.hex()})
    prefix = MANIFEST_MAGIC + bytes((FORMAT,)) + len(header).to_bytes(4, "big") + header
    nonce = os.urandom(NONCE_BYTES)
    return prefix + nonce + keys.manifest.encrypt(nonce, _canonical(manifest), prefix)


def manifest_header(sealed: bytes) -> dict:
    """The manifest's clear header (the binding and the salt), NOT yet authenticated."""
    if len(sealed) < 9 or sealed[:4] != MANIFEST_MAGIC:
        raise BackupDamaged("manifest", "not a Vouch backup manifest")
    if sealed[4] != FORMAT:
        raise BackupDamaged("manifest", f"format {sealed[4]} is not one this version of Vouch reads")
    length = int.from_bytes(sealed[5:9], "big")
    if len(sealed) < 9 + length + NONCE_BYTES + TAG_BYTES:
        raise BackupDamaged("manifest", "truncated")
    try:
        header = json.loads(sealed[9 : 9 + length])
        bytes.fromhex(header["salt"])
    except (ValueError, KeyError, TypeError):
        raise BackupDamaged("manifest", "its header is not readable (altered)") from None
    if not isinstance(header, dict):
        raise BackupDamaged("manifest", "its header is not readable (altered)")
    return header


def open_manifest(base: bytes, sealed: bytes, expected: dict, whose: str) -> tuple[dict, SetKeys]:
    """Authenticate and decrypt a manifest that must be the set ``expected`` (a binding
    from the set's name and location). Returns the manifest and the set's keys."""
    header = manifest_header(sealed)
    claimed = {name: header.get(name) for name in expected}
    # Checked on what the header claims first, for a clear message; what counts is below:
    # the key is derived from the expected binding, so a lie in the header cannot verify.
    for name in ("scope", "company_id", "set_id", "taken_at"):
        if claimed[name] != expected[name]:
            raise BackupDamaged(
                "manifest",
                f"the set says its {name.replace('_', ' ')} is {claimed[name] or 'none'!r} but it is stored as "
                f"{expected[name] or 'none'!r}: swapped between companies or renamed to another time; refused",
            )
    length = int.from_bytes(sealed[5:9], "big")
    prefix = sealed[: 9 + length]
    nonce = sealed[9 + length : 9 + length + NONCE_BYTES]
    bound = expected | {"region": header.get("region", "")}
    keys = set_keys(base, bound, bytes.fromhex(header["salt"]))
    try:
        plain = keys.manifest.decrypt(nonce, sealed[9 + length + NONCE_BYTES :], prefix)
    except InvalidTag:
        raise BackupDamaged(
            "manifest",
            f"failed authentication under {whose}'s backup key: altered, truncated, or not {whose}'s set",
        ) from None
    manifest = json.loads(plain)
    for name, value in bound.items():
        if manifest.get(name) != value:
            raise BackupDamaged("manifest", f"its {name} does not match its header (altered before sealing?)")
    return manifest, keys
