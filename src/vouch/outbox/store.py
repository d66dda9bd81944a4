"""Reading the outbox: newest first, opened with the outbox key, parsed with the
standard library.

Messages are sealed files (``*.sealed``, see ``outbox.sealing``). Plain-text ``*.eml``
files written before messages were sealed are still listed and read as before, and
purged like any other message once older than ``KEEP_FOR_SECONDS``: a week after the
upgrade none is left. A file that does not open (altered, renamed, or sealed under a
key that is gone) is skipped by the list and logged, and is "no such message" to
``get_message``: never shown, never an error page.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import logging
import re
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from django.conf import settings

from vouch.outbox import sealing
from vouch.vault import providers
from vouch.vault.errors import DecryptionError

SEALED_SUFFIX = ".sealed"
LEGACY_SUFFIX = ".eml"  # plain text, from before messages were sealed
SUFFIXES = (SEALED_SUFFIX, LEGACY_SUFFIX)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxMessage:
    name: str
    to: str
    subject: str
    date: str
    body: str
    # The From header as a reader shows it, decoded ("Acme via Vouch <no-reply@...>").
    sender: str = ""


def _parse(name: str, raw: bytes) -> OutboxMessage:
    message: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    # A long encoded subject is folded onto a continuation line, which the parser
    # reads back with a leading space.
    subject = str(message["Subject"]).strip()
    sender = str(message["From"] or "")
    return OutboxMessage(name, str(message["To"]), subject, str(message["Date"]), body, sender)


class _Reader:
    """Opens messages of one directory, unwrapping the outbox key once, when the first
    sealed message needs it."""

    def __init__(self, directory: Path, provider: providers.MasterKeyProvider | None) -> None:
        self.directory, self.provider = directory, provider
        self._key: sealing.OutboxKey | None = None
        self._loaded = False

    def key(self) -> sealing.OutboxKey | None:
        if not self._loaded:
            self._key, self._loaded = sealing.load_key(self.directory, self.provider), True
        return self._key

    def read(self, path: Path) -> OutboxMessage | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # purged between listing and reading
            return None
        except OSError as exc:
            log.warning("outbox: cannot read message %s: %s", path.name, exc.strerror or exc)
            return None
        try:
            if path.suffix == SEALED_SUFFIX:
                key = self.key()
                if key is None:
                    return None  # no usable key: load_key has said why
                raw = sealing.open_message(key, path.name, data)
            elif sealing.is_sealed(data):
                # A sealed message renamed to look like an old plain one.
                raise DecryptionError(f"outbox message {path.name}: sealed, but not named as sealed")
            else:
                raw = data
            return _parse(path.name, raw)
        except DecryptionError as exc:
            log.warning("outbox: message skipped: %s", exc)
        except (email.errors.MessageError, LookupError, ValueError) as exc:
            log.warning("outbox: message %s is not readable mail: %s", path.name, exc.__class__.__name__)
        return None


def _message_paths(directory: Path) -> list[Path]:
    """Message files, newest first (names start with the time they were written)."""
    # Regular files only, as get_message: a symlink could point out of the outbox.
    return sorted(
        (p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.is_symlink()),
        key=lambda p: p.name,
        reverse=True,
    )


def list_messages(
    limit: int | None = None,
    *,
    directory: Path | None = None,
    provider: providers.MasterKeyProvider | None = None,
) -> list[OutboxMessage]:
    """The newest ``limit`` messages that open (all of them with None). ``directory``
    and ``provider`` default to this installation's (``OUTBOX_DIR``, its master keys)."""
    directory = Path(directory or settings.OUTBOX_DIR)
    if not directory.is_dir():
        return []
    reader = _Reader(directory, provider)
    found: list[OutboxMessage] = []
    for path in _message_paths(directory):
        if limit is not None and len(found) >= limit:
            break
        message = reader.read(path)
        if message is not None:
            found.append(message)
    return found


def get_message(
    name: str, *, directory: Path | None = None, provider: providers.MasterKeyProvider | None = None
) -> OutboxMessage | None:
    """The message named ``name``, or None: no such file, outside the outbox, or it does
    not open."""
    directory = Path(directory or settings.OUTBOX_DIR).resolve()
    try:
        path = (directory / name).resolve()
    except (OSError, ValueError):  # ValueError: a NUL byte in the name
        return None
    # The name comes from a URL or the command line: stay inside the outbox.
    if path.parent != directory or path.suffix not in SUFFIXES or not path.is_file():
        return None
    return _Reader(directory, provider).read(path)


# Messages carry names and live private links (sealed now, but the outbox stands in for
# a mail server, which would hand them on): they are kept this long, then removed by the
# daily maintenance.
KEEP_FOR_SECONDS = 7 * 24 * 3600


def company_tag(company_id) -> str:
    """How a message file's name says it belongs to ``company_id`` (32 hex digits);
    "" for a value that is not a company id."""
    try:
        return uuid.UUID(str(company_id)).hex
    except ValueError:
        return ""


def remove_company_messages(company_id, *, directory: Path | None = None) -> int:
    """Remove every outbox message of company ``company_id`` (its purge: the messages
    hold its people's names, addresses and private links); returns how many. Messages
    written before they carried a company (and old plain ones) are not told apart:
    they go with the week's expiry (``purge_older_than``)."""
    tag = company_tag(company_id)
    directory = Path(directory or settings.OUTBOX_DIR)
    if not tag or not directory.is_dir():
        return 0
    # A message being written has a temporary name holding the tag too (".<name>.tmp").
    pattern = re.compile(rf"\.?[0-9T]+-[0-9a-f]{{8}}-{tag}\{SEALED_SUFFIX}(\.tmp)?")
    removed = 0
    for path in directory.iterdir():
        if not pattern.fullmatch(path.name):
            continue
        try:
            if path.is_symlink() or not path.is_file():
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed += not path.name.endswith(".tmp")
    return removed


def purge_older_than(seconds: float = KEEP_FOR_SECONDS, *, now: float | None = None) -> int:
    """Remove outbox messages written more than ``seconds`` ago (sealed and old plain
    ones alike); returns how many. Outbox keys set aside that long ago go too: the
    messages they sealed are gone by then."""
    directory = Path(settings.OUTBOX_DIR)
    if not directory.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - seconds
    removed = 0
    for path in directory.iterdir():
        is_message = path.suffix in SUFFIXES
        if not (is_message or path.name.startswith(sealing.UNREADABLE_KEY_PREFIX)):
            continue
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed += is_message
    return removed
