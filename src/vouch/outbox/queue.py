"""Account mail that is never lost: sent at once, and kept and retried when it cannot be.

The reference workflow's mail has its own rows in each company's database
(vouch.references.mailing.outgoing). The rest (sign-in alerts, password and email
changes, password resets, invitations, abuse alerts to owners) concern accounts, which
live in the control database, and went out directly from the request: when the mail
server was away, they were logged and lost. ``send`` still sends at once; when that
fails, the message is saved in the control database (sealed with the outbox key: it
holds addresses, names and live links such as a reset link), in the caller's transaction
(a change rolled back needs no mail), and the worker's round (``drain``) tries again one
minute later, doubling to six hours, for three days; then it is given up and logged as
an error. Every try carries the same Message-ID and the same name in the local outbox.

Written here rather than taken from a library: django-mailer and similar queues keep
messages in plain text and need a cron of their own; Vouch's are sealed and sent by the
worker it already runs."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.db import router
from django.utils import timezone

from vouch.outbox import sealing
from vouch.outbox.backends import COMPANY_HEADER, ONCE_HEADER
from vouch.outbox.models import QueuedMail

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(days=3)
KEPT = timedelta(days=30)
LEASE = timedelta(minutes=2)


def _using() -> str:
    return router.db_for_write(QueuedMail)


def _seal_name(row_id: uuid.UUID) -> str:
    # Bound into the seal: one row's sealed message moved into another row does not open.
    return f"queued-mail-{row_id.hex}"


def _key() -> sealing.OutboxKey:
    directory = Path(settings.OUTBOX_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return sealing.key_for_writing(directory)


def _header(message: EmailMessage, header: str) -> str:
    return next((str(v) for k, v in message.extra_headers.items() if k.lower() == header.lower()), "")


def _snapshot(message: EmailMessage) -> dict:
    """What rebuilds the message: its parts, not its MIME (Django renders that per send)."""
    if message.attachments:
        raise ValueError("account mail with attachments is not kept for retries")
    ours = {COMPANY_HEADER.lower(), ONCE_HEADER.lower()}
    headers = {str(k): str(v) for k, v in message.extra_headers.items() if k.lower() not in ours}
    alternatives = [[str(content), mimetype] for content, mimetype in getattr(message, "alternatives", [])]
    return {
        "subject": str(message.subject),
        "body": str(message.body),
        "from": str(message.from_email),
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": headers,
        "alternatives": alternatives,
        "subtype": message.content_subtype,
    }


def send(message: EmailMessage, kind: str) -> bool:
    """Send ``message`` now; when that fails, keep it for the worker to send. Whether it
    went out now. Never raises for the mail server: the change it tells of has happened."""
    if not _header(message, "Message-ID"):
        domain = urlsplit(settings.PUBLIC_URL).hostname or "vouch.invalid"
        message.extra_headers["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    company = _header(message, COMPANY_HEADER)
    snapshot = _snapshot(message)  # before a backend takes Vouch's own headers off it
    try:
        if get_connection().send_messages([message]) == 1:
            return True
        error = "not accepted"
    except Exception as exc:  # noqa: BLE001 - kept and retried below
        error = _describe(exc)
    row_id = uuid.uuid4()
    sealed = sealing.seal(_key(), _seal_name(row_id), json.dumps(snapshot).encode())
    moment = timezone.now()
    QueuedMail.objects.using(_using()).create(
        id=row_id,
        kind=kind[:64],
        company=company,
        sealed=sealed,
        created_at=moment,
        attempts=1,
        next_attempt_at=moment + _backoff(1),
        last_error=error,
    )
    log.warning("account mail (%s) not sent now (%s): kept, the worker tries again", kind, error)
    return False


def _rebuild(snapshot: dict, headers: dict[str, str]) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        snapshot["subject"],
        snapshot["body"],
        snapshot["from"],
        snapshot["to"],
        cc=snapshot["cc"],
        bcc=snapshot["bcc"],
        reply_to=snapshot["reply_to"],
        headers={**snapshot["headers"], **headers},
    )
    message.content_subtype = snapshot["subtype"]
    for content, mimetype in snapshot["alternatives"]:
        message.attach_alternative(content, mimetype)
    return message


def _backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts`` + 1: one minute, doubling, at most six hours."""
    return timedelta(minutes=min(2 ** (attempts - 1), 360))


def _claim(row_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
    """Take the row for a lease if it is due and nobody holds it: one conditional update,
    so two senders (a request's after-commit and the worker) never both win."""
    claim = uuid.uuid4()
    taken = (
        QueuedMail.objects.using(_using())
        .filter(pk=row_id, sent_at__isnull=True, gave_up_at__isnull=True, next_attempt_at__lte=now)
        .exclude(claimed_at__gt=now - LEASE)
        .update(claim=claim, claimed_at=now)
    )
    return claim if taken else None


def _deliver(row: QueuedMail, claim: uuid.UUID, now: datetime) -> bool:
    error = ""
    try:
        snapshot = json.loads(sealing.open_message(_key(), _seal_name(row.pk), bytes(row.sealed)))
        stamp = row.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
        headers = {ONCE_HEADER: f"{stamp}-{row.pk.hex[:8]}"}
        if row.company:
            headers[COMPANY_HEADER] = row.company
        sent = get_connection().send_messages([_rebuild(snapshot, headers)]) == 1
        error = "" if sent else "not accepted"
    except Exception as exc:  # noqa: BLE001 - one message that cannot go must not stop the others
        error, sent = _describe(exc), False
    mine = QueuedMail.objects.using(_using()).filter(pk=row.pk, claim=claim)
    attempts = row.attempts + 1
    if sent:
        mine.update(sent_at=now, attempts=attempts, claimed_at=None, last_error="")
    elif now - row.created_at >= GIVE_UP_AFTER:
        log.error("account mail %s (%s) given up after %d attempts: %s", row.pk, row.kind, attempts, error)
        mine.update(gave_up_at=now, attempts=attempts, claimed_at=None, last_error=error)
    else:
        log.warning("account mail %s (%s) not sent (%s): tried again later", row.pk, row.kind, error)
        mine.update(attempts=attempts, next_attempt_at=now + _backoff(attempts), claimed_at=None, last_error=error)
    return sent


def _describe(exc: Exception) -> str:
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}{f' {code}' if code else ''}"[:200]


def drain(*, row_ids: list[uuid.UUID] | None = None, now: datetime | None = None, limit: int = 200) -> int:
    """Send the due account mail (only ``row_ids`` when given); how many went. Never
    raises: what is not sent now stays for the next round."""
    sent = 0
    moment = now or timezone.now()
    try:
        pending = QueuedMail.objects.using(_using()).filter(
            sent_at__isnull=True, gave_up_at__isnull=True, next_attempt_at__lte=moment
        )
        if row_ids is not None:
            pending = pending.filter(pk__in=row_ids)
        due = pending.exclude(claimed_at__gt=moment - LEASE).order_by("next_attempt_at")
        for row_id in list(due.values_list("pk", flat=True)[:limit]):
            claim = _claim(row_id, moment)
            if claim is None:
                continue
            row = QueuedMail.objects.using(_using()).get(pk=row_id)
            sent += _deliver(row, claim, moment)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not send the queued account mail")
    return sent


def purge(*, now: datetime | None = None) -> int:
    """Rows sent or given up more than 30 days ago."""
    cutoff = (now or timezone.now()) - KEPT
    done = QueuedMail.objects.using(_using())
    removed, _ = done.filter(sent_at__lt=cutoff).delete()
    given_up, _ = done.filter(gave_up_at__lt=cutoff).delete()
    return removed + given_up


def remove_company(company_id) -> int:
    """A purged company's mail not yet sent or kept: it holds its members' addresses."""
    removed, _ = QueuedMail.objects.using(_using()).filter(company=str(company_id)).delete()
    return removed


def waiting() -> dict[str, int]:
    """What the queue holds now, for `vouch outbox status` and the metrics."""
    rows = QueuedMail.objects.using(_using())
    return {
        "waiting": rows.filter(sent_at__isnull=True, gave_up_at__isnull=True).count(),
        "given_up": rows.filter(gave_up_at__isnull=False).count(),
    }


def send_each(template: str, subject: str, data: dict, recipients, *, company_id=None, kind: str) -> int:
    """One email per recipient (``template``.txt and .html, rendered with ``user``), each
    sent now or kept for the worker, marked as the company's when ``company_id`` is given;
    how many were sent or kept. A message that cannot even be rendered is logged, not raised:
    the change it announces has happened and is recorded as a security event."""
    from django.template.loader import render_to_string

    from vouch.outbox.backends import company_headers

    handled = 0
    for user in recipients:
        try:
            text = render_to_string(f"{template}.txt", {**data, "user": user})
            html = render_to_string(f"{template}.html", {**data, "user": user})
            message = EmailMultiAlternatives(
                subject, text, settings.DEFAULT_FROM_EMAIL, [user.email], headers=company_headers(company_id)
            )
            message.attach_alternative(html, "text/html")
            send(message, kind)
            handled += 1
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("could not render or keep the %s email", kind)
    return handled
