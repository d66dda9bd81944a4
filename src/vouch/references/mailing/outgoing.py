"""The workflow's outgoing mail: recorded with the change that causes it, sent after.

A change that sends mail (a link, a reminder, a notice) calls :func:`record` inside
its own transaction: the mail is a row of the company's database (``OutgoingMail``),
so it commits or rolls back with the change. Then a sender sends it: at once, after
the commit, in the same process (:func:`send_after_commit`); and the worker looks for
unsent mail in every company now and then (:func:`drain_all`), which catches the mail
of a process killed between its commit and its sending.

The rows live in each company's database, not in a control-database table, because
only a table in the same database can share the change's transaction (a company's
workflow rows live in its own database); the worker walks the active companies.

A sender claims a row (a conditional update: one claimant wins), sends it and marks
it sent (only if it still holds the claim); a claim older than
``VOUCH_WORK_LEASE_SECONDS`` is a dead sender's, and is taken over. A
failure is tried again with a growing wait, and given up after ``MAX_ATTEMPTS``. A
sender killed after sending but before marking leaves the row to be sent again once
its claim lapses: the message keeps its Message-ID and its name in the local outbox,
so the outbox keeps one copy, and a mail server may drop the repeat by its
Message-ID (SMTP has no way to be surer)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import router, transaction
from django.utils import timezone

from vouch.core import faults
from vouch.core.context import company_context, current
from vouch.references.mailing import mail
from vouch.references.request_models import OutgoingMail
from vouch.tenancy.company_row import company_by_id
from vouch.tenancy.models import Company, CompanyStatus

log = logging.getLogger("vouch.references.mailing.outgoing")

# The functions of references.mail a row may name, with how they are called.
KINDS = {
    "candidate_invitation": lambda company_id, row: mail.candidate_invitation(
        company_id, row.subject_id, row.token or ""
    ),
    "referee_invitation": lambda company_id, row: mail.referee_invitation(company_id, row.subject_id, row.token or ""),
    "candidate_reminder": lambda company_id, row: mail.candidate_reminder(
        company_id, row.subject_id, row.token or "", row.number
    ),
    "referee_reminder": lambda company_id, row: mail.referee_reminder(
        company_id, row.subject_id, row.token or "", row.number
    ),
    "reference_completed_recruiter": lambda company_id, row: mail.reference_completed_recruiter(
        company_id, row.subject_id
    ),
    "reference_completed_candidate": lambda company_id, row: mail.reference_completed_candidate(
        company_id, row.subject_id
    ),
    "reference_declined": lambda company_id, row: mail.reference_declined(company_id, row.subject_id, row.token or ""),
    # Notices to the request's recruiter (references.desk.notices).
    "notice_reference_declined": lambda company_id, row: mail.notice_reference_declined(company_id, row.subject_id),
    "notice_high_flag": lambda company_id, row: mail.notice_high_flag(company_id, row.subject_id),
    "notice_request_completed": lambda company_id, row: mail.notice_request_completed(company_id, row.subject_id),
    "notice_request_expired": lambda company_id, row: mail.notice_request_expired(company_id, row.subject_id),
    "notice_digest": lambda company_id, row: mail.notice_digest(company_id, row.subject_id),
}
MAX_ATTEMPTS = 8  # about a day and a half of tries (see _backoff)
SENT_KEPT = timedelta(days=30)


def _using() -> str:
    return router.db_for_write(OutgoingMail)


def record(kind: str, subject_id, *, token: str = "", number: int = 0, send_now: bool = True) -> OutgoingMail:
    """Record a mail to send once the current transaction commits (call it inside the
    transaction of the change, in the company's context), and send it then; or, not
    ``send_now``, leave it to the caller's background task (:func:`send_rows`), and to
    :func:`drain_all` should that task be lost."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail {kind!r}")
    row = OutgoingMail.objects.create(kind=kind, subject_id=subject_id, token=token or None, number=number)
    if send_now:
        send_after_commit(row.pk)
    return row


def send_after_commit(row_id) -> None:
    company_id = current().company_id
    transaction.on_commit(lambda: _send_now(company_id, [row_id]), using=_using(), robust=True)


def _send_now(company_id, row_ids) -> None:
    faults.pause("after_commit")  # the change and its mail are saved; nothing is sent yet
    send_rows(company_id, row_ids)


def send_rows(company_id, row_ids) -> None:
    """Send these rows of the company's outgoing mail (those still due and unclaimed)."""
    company = company_by_id(company_id)
    if company is not None:
        drain_company(company, row_ids=row_ids)


def lease() -> timedelta:
    return timedelta(seconds=settings.VOUCH_WORK_LEASE_SECONDS)


def _backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts`` + 1: one minute, doubling, at most six hours."""
    return timedelta(minutes=min(2 ** (attempts - 1), 360))


def _claim(row_id, now: datetime) -> uuid.UUID | None:
    """Take row ``row_id`` for a lease if it is due and nobody holds it; the claim's id,
    or None. One conditional update: two senders never both win."""
    claim = uuid.uuid4()
    pending = OutgoingMail.objects.filter(pk=row_id, sent_at__isnull=True, gave_up_at__isnull=True)
    taken = (
        pending.filter(next_attempt_at__lte=now)
        .exclude(claimed_at__gt=now - lease())
        .update(claim=claim, claimed_at=now)
    )
    return claim if taken else None


def _once(row: OutgoingMail) -> tuple[str, str]:
    """The message's Message-ID and its name in the local outbox, the same on every attempt."""
    domain = urlsplit(settings.PUBLIC_URL).hostname or "vouch.invalid"
    stamp = row.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"<{row.pk.hex}@{domain}>", f"{stamp}-{row.pk.hex[:8]}"


def _deliver(company, row: OutgoingMail, claim: uuid.UUID, now: datetime | None) -> bool:
    try:
        message_id, once = _once(row)
        with mail.delivery(message_id, once, report_failure=row.attempts == 0):
            sent = bool(KINDS[row.kind](company.pk, row))
    except ObjectDoesNotExist:
        # Its request or reference was deleted meanwhile (retention, erasure): nobody to tell.
        log.info("outgoing mail %s (%s) is about something deleted: dropped", row.pk, row.kind)
        OutgoingMail.objects.filter(pk=row.pk, claim=claim).update(gave_up_at=now or timezone.now(), token=None)
        return False
    except Exception:  # noqa: BLE001 - a row that cannot be sent must not stop the others
        log.exception("outgoing mail %s (%s) failed", row.pk, row.kind)
        sent = False
    faults.pause("after_mail_sent")
    now = now or timezone.now()
    mine = OutgoingMail.objects.filter(pk=row.pk, claim=claim)
    attempts = row.attempts + 1
    if sent:
        mine.update(sent_at=now, token=None, attempts=attempts, claimed_at=None)
    elif attempts >= MAX_ATTEMPTS:
        log.error("outgoing mail %s (%s) given up after %d attempts", row.pk, row.kind, attempts)
        mine.update(gave_up_at=now, token=None, attempts=attempts, claimed_at=None)
    else:
        mine.update(attempts=attempts, next_attempt_at=now + _backoff(attempts), claimed_at=None)
    return sent


def drain_company(company, *, row_ids=None, now: datetime | None = None, limit: int = 200) -> int:
    """Send the company's due mail (only ``row_ids`` when given); returns how many were
    sent. Never raises: what is not sent now stays for the next round."""
    sent = 0
    try:
        with company_context(company):
            if row_ids is not None and len(row_ids) == 1:
                # One row (a new request's email): its claim checks that it is due and
                # free, so it is not looked for first.
                candidates = list(row_ids)
            else:
                pending = OutgoingMail.objects.filter(sent_at__isnull=True, gave_up_at__isnull=True)
                if row_ids is not None:
                    pending = pending.filter(pk__in=row_ids)
                moment = now or timezone.now()
                due = pending.filter(next_attempt_at__lte=moment).exclude(claimed_at__gt=moment - lease())
                candidates = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
            for row_id in candidates:
                claim = _claim(row_id, now or timezone.now())
                if claim is None:
                    continue  # another sender has it, or has sent it
                row = OutgoingMail.objects.get(pk=row_id)
                sent += _deliver(company, row, claim, now)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not send the outgoing mail of company %s", company.pk)
    return sent


def drain_all(*, now: datetime | None = None) -> int:
    """Send the due mail of every active company (the worker, now and then)."""
    companies = Company.objects.filter(is_active=True).exclude(status=CompanyStatus.DELETED)
    return sum(drain_company(company, now=now) for company in companies.order_by("pk"))


def purge_sent(*, now: datetime | None = None) -> int:
    """Rows sent or given up more than ``SENT_KEPT`` ago (call in the company's context)."""
    cutoff = (now or timezone.now()) - SENT_KEPT
    sent, _ = OutgoingMail.objects.filter(sent_at__lt=cutoff).delete()
    given_up, _ = OutgoingMail.objects.filter(gave_up_at__lt=cutoff).delete()
    return sent + given_up
