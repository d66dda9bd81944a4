"""Reading the outbox: newest first, parsed with the standard library."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class OutboxMessage:
    name: str
    to: str
    subject: str
    date: str
    body: str


def _parse(path: Path) -> OutboxMessage:
    message: EmailMessage = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    return OutboxMessage(path.name, str(message["To"]), str(message["Subject"]), str(message["Date"]), body)


def list_messages(limit: int | None = None) -> list[OutboxMessage]:
    directory = Path(settings.OUTBOX_DIR)
    if not directory.is_dir():
        return []
    # Regular files only, as get_message: a symlink could point out of the outbox.
    paths = sorted((p for p in directory.glob("*.eml") if p.is_file() and not p.is_symlink()), reverse=True)
    return [_parse(p) for p in paths[:limit]]


def get_message(name: str) -> OutboxMessage | None:
    directory = Path(settings.OUTBOX_DIR).resolve()
    try:
        path = (directory / name).resolve()
    except (OSError, ValueError):  # ValueError: a NUL byte in the name
        return None
    # The name comes from a URL or the command line: stay inside the outbox.
    if path.parent != directory or path.suffix != ".eml" or not path.is_file():
        return None
    return _parse(path)


# Messages in the embedded default's outbox carry names and live private links in
# plain text (it stands in for a mail server, which would hand them on): they are
# kept this long, then removed by the daily maintenance.
KEEP_FOR_SECONDS = 7 * 24 * 3600


def purge_older_than(seconds: float = KEEP_FOR_SECONDS, *, now: float | None = None) -> int:
    """Remove outbox messages written more than ``seconds`` ago; returns how many."""
    import time

    directory = Path(settings.OUTBOX_DIR)
    if not directory.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - seconds
    removed = 0
    for path in directory.glob("*.eml"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
