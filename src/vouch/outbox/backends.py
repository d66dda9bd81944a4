"""Mail backends: the local outbox (embedded default) and SMTP that insists on TLS."""

from __future__ import annotations

import os
import ssl
import uuid
from functools import cached_property
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.utils import timezone


class OutboxBackend(BaseEmailBackend):
    """Writes each message as an .eml file (mode 0600) under ``OUTBOX_DIR``.

    Django's file backend appends many messages to one log per process; an operator
    (and ``vouch outbox``) needs one readable file per message, in order."""

    def send_messages(self, email_messages) -> int:
        directory = Path(settings.OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        sent = 0
        for message in email_messages:
            name = f"{timezone.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.eml"
            temporary = directory / f".{name}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.message().as_bytes(linesep="\n"))
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
