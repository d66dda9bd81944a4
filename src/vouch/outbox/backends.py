"""Mail backends: the local outbox (embedded default) and SMTP that insists on TLS."""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import uuid
from functools import cached_property
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.utils import timezone

from vouch.outbox import sealing
from vouch.outbox.store import SEALED_SUFFIX, company_tag

# Which company a message belongs to, set by whoever sends it (``company_headers``).
# The outbox puts the company in the message's file name, so purging the company
# removes its mail; no backend lets the header leave Vouch.
COMPANY_HEADER = "X-Vouch-Company"


# The name a message keeps in the local outbox whatever the number of attempts to send
# it ("<stamp>-<8 hex>", set by ``references.outgoing``): a second attempt finds it
# there and writes nothing. Removed before the message leaves, like the company's.
ONCE_HEADER = "X-Vouch-Once"
_ONCE = re.compile(r"[0-9T]{21}-[0-9a-f]{8}")


def company_headers(company_id) -> dict[str, str]:
    """The ``headers`` that mark a message as company ``company_id``'s ({} for None)."""
    return {COMPANY_HEADER: str(company_id)} if company_id else {}


def _take_header(message, header: str) -> str:
    headers = getattr(message, "extra_headers", None) or {}
    values = [headers.pop(name) for name in [name for name in headers if name.lower() == header.lower()]]
    return str(values[0]) if values else ""


def _take_company(message) -> str:
    """The company tag of ``message`` ("" when none), removed from its headers."""
    return company_tag(_take_header(message, COMPANY_HEADER))


def _take_once(message) -> str:
    """The fixed outbox name of ``message`` ("" when none), removed from its headers."""
    value = _take_header(message, ONCE_HEADER)
    return value if _ONCE.fullmatch(value) else ""


class OutboxBackend(BaseEmailBackend):
    """Writes each message as one file (mode 0600) under ``OUTBOX_DIR``, sealed with the
    outbox key (``outbox.sealing``): the messages hold names and live private links.

    Django's file backend appends many messages to one log per process; an operator
    (and ``vouch outbox``) needs one readable message per file, in order."""

    def send_messages(self, email_messages) -> int:
        messages = list(email_messages)
        if not messages:
            return 0
        directory = Path(settings.OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = sealing.key_for_writing(directory)
        sent = 0
        for message in messages:
            company, once = _take_company(message), _take_once(message)
            stamp = once or f"{timezone.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}"
            # The name is bound into the seal: a message renamed to another company's
            # (or to none) does not open.
            name = f"{stamp}-{company}{SEALED_SUFFIX}" if company else f"{stamp}{SEALED_SUFFIX}"
            sealed = sealing.seal(key, name, message.message().as_bytes(linesep="\n"))
            # Written under a name no reader lists, then renamed: never half a message.
            temporary = directory / f".{name}.tmp"
            if once:
                # Left by a sender killed while writing it: nobody else writes this name.
                temporary.unlink(missing_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(sealed)
            if once:
                # A link, unlike a rename, never replaces: the message sent once stays once.
                with contextlib.suppress(FileExistsError):
                    os.link(temporary, directory / name)
                temporary.unlink()
            else:
                temporary.rename(directory / name)
            sent += 1
        return sent


class SMTPBackend(DjangoSMTPBackend):
    """Django's SMTP backend with certificate verification against a chosen CA file
    (``VOUCH_SMTP_CA_FILE``) for relays with a private CA; the system CAs otherwise."""

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        ca_file = getattr(settings, "VOUCH_SMTP_CA_FILE", "") or None
        context = ssl.create_default_context(cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def send_messages(self, email_messages) -> int:
        messages = list(email_messages)
        for message in messages:
            # Vouch's own bookkeeping, not for the recipient.
            _take_company(message)
            _take_once(message)
        return super().send_messages(messages)
