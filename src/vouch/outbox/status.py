"""The outbox key and the messages it seals, as ``vouch keys status`` shows them.

Cheap for a big outbox: message files are told apart by name, and only the first
``sealing.HEADER_BYTES`` bytes of each are read (the header names the outbox key that
sealed it); no body is decrypted, and the outbox key is unwrapped once.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from vouch.outbox import sealing
from vouch.outbox.store import LEGACY_SUFFIX, SEALED_SUFFIX
from vouch.vault import providers

OUTBOX_BACKEND = "vouch.outbox.backends.OutboxBackend"
SHORT_ID_CHARS = 8


def in_use() -> bool:
    """Mail goes to the local outbox (the embedded default: no ``VOUCH_SMTP_URL``)."""
    return settings.EMAIL_BACKEND == OUTBOX_BACKEND


def scan(directory: Path, key_id: bytes | None) -> tuple[dict[str, int], int]:
    """One pass over ``directory``: its messages, counted as ``sealed`` (under the
    outbox key ``key_id``), ``legacy`` (plain ``.eml`` from before sealing) and
    ``unreadable`` (sealed under another outbox key, replaced or set aside, or not a
    sealed message at all; with ``key_id`` None, every sealed message); and how many
    outbox keys are set aside."""
    counts = {"sealed": 0, "legacy": 0, "unreadable": 0}
    set_aside = 0
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return counts, set_aside
    with entries:
        for entry in entries:
            if entry.name.startswith(sealing.UNREADABLE_KEY_PREFIX):
                set_aside += 1
                continue
            suffix = os.path.splitext(entry.name)[1]
            # Regular files only, as the readers: a symlink could point out of the outbox.
            if suffix not in (SEALED_SUFFIX, LEGACY_SUFFIX) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                header = _head(entry.path)
            except FileNotFoundError:  # purged meanwhile
                continue
            except OSError:
                counts["unreadable"] += 1
                continue
            counts[_kind(suffix, header, key_id)] += 1
    return counts, set_aside


def _head(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        return os.read(fd, sealing.HEADER_BYTES)
    finally:
        os.close(fd)


def _kind(suffix: str, header: bytes, key_id: bytes | None) -> str:
    if suffix == LEGACY_SUFFIX:
        # A sealed message renamed to look like a plain one is not shown as mail either.
        return "unreadable" if sealing.is_sealed(header) else "legacy"
    return "sealed" if key_id is not None and header == sealing.header(key_id) else "unreadable"


def outbox_status(directory: Path | None = None, provider: providers.MasterKeyProvider | None = None) -> dict:
    """``used`` (mail goes to the outbox), ``backend`` (the mail backend),
    ``directory``; when not used, only ``key_file`` (a key from earlier use is there).
    Otherwise ``present`` (there is a key file), ``key_id`` (short hex; None when absent
    or unparsable), ``master_version`` wrapping it, ``master_current`` (the provider's
    current version), ``master_available`` (the provider has it), ``wrapped_at``,
    ``opens``, ``problem`` (why it does not open), ``messages`` (see ``scan``) and
    ``set_aside`` (keys set aside because they did not open, kept until purged with
    their messages)."""
    directory = Path(directory or settings.OUTBOX_DIR)
    if not in_use():
        return {
            "used": False,
            "backend": settings.EMAIL_BACKEND,
            "directory": str(directory),
            "key_file": (directory / sealing.KEY_FILE).exists(),
        }
    provider = provider or providers.get_provider()
    info = sealing.key_info(directory, provider)
    available = provider.versions()
    version = info.master_version if info else None
    messages, set_aside = scan(directory, info.key_id if info else None)
    return {
        "used": True,
        "backend": settings.EMAIL_BACKEND,
        "directory": str(directory),
        "present": info is not None,
        "key_id": info.key_id.hex()[:SHORT_ID_CHARS] if info and info.key_id else None,
        "master_version": version,
        "master_current": version is not None and bool(available) and version == provider.current_version(),
        "master_available": version is not None and version in available,
        "wrapped_at": datetime.fromtimestamp(info.wrapped_at, UTC) if info and info.wrapped_at else None,
        "opens": bool(info and info.opens),
        "problem": info.problem if info else "",
        "messages": messages,
        "set_aside": set_aside,
    }
