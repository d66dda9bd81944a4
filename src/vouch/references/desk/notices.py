"""Notices to a request's recruiter: a reference in, a referee's decline, a High fraud
signal, the request complete or expired.

The workflow calls :func:`notify` inside the transaction of the change, in the
company's context. The recruiter's preference for that event decides: at once (a mail
recorded with the change, ``mailing.outgoing``, sent after the commit), in the daily
digest (a ``Notice`` row, gathered by :func:`send_digests` in the company's daily
maintenance), or not at all. A change that rolls back leaves neither.

Only the request's recruiter (its creator) is told, and only while an active member of
the company: they already see the request, so a notice shows nothing they cannot see
on its page (the candidate's and referee's names, the role); reasons, answers and
addresses stay on the page."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils import timezone

from vouch.references.mailing import outgoing
from vouch.references.request_models import (
    Flag,
    Notice,
    NoticeDelivery,
    NoticeEvent,
    NoticePreference,
    Reference,
    ReferenceRequest,
    Severity,
)
from vouch.tenancy import company_db

# The mail of each event sent at once (a function of ``mailing.mail``, named in
# ``outgoing.KINDS``), and what its row is about. A completed reference keeps the
# notice it always had.
IMMEDIATE_KIND = {
    NoticeEvent.REFERENCE_COMPLETED: "reference_completed_recruiter",
    NoticeEvent.REFERENCE_DECLINED: "notice_reference_declined",
    NoticeEvent.HIGH_FLAG: "notice_high_flag",
    NoticeEvent.REQUEST_COMPLETED: "notice_request_completed",
    NoticeEvent.REQUEST_EXPIRED: "notice_request_expired",
}


def preferences(user_id: int) -> dict[str, str]:
    """The member's choice for every event (at once where they chose nothing)."""
    chosen = dict(NoticePreference.objects.filter(user_id=user_id).values_list("event", "delivery"))
    return {event: chosen.get(event, NoticeDelivery.IMMEDIATELY) for event in NoticeEvent.values}


def set_preferences(user_id: int, choices: dict[str, str]) -> None:
    """Save the member's choices (events and deliveries already validated by the form)."""
    with company_db.atomic():
        for event, delivery in choices.items():
            NoticePreference.objects.update_or_create(user_id=user_id, event=event, defaults={"delivery": delivery})


def notify(
    event: str,
    reference_request: ReferenceRequest,
    *,
    reference: Reference | None = None,
    flag: Flag | None = None,
) -> str:
    """Tell the request's recruiter of ``event`` as they chose; returns the delivery
    used ("off" when nobody is to hear). Call inside the change's transaction."""
    user_id = reference_request.created_by_id
    if not user_id:
        return NoticeDelivery.OFF
    delivery = (
        NoticePreference.objects.filter(user_id=user_id, event=event).values_list("delivery", flat=True).first()
        or NoticeDelivery.IMMEDIATELY
    )
    if delivery == NoticeDelivery.DIGEST:
        Notice.objects.create(user_id=user_id, event=event, request=reference_request, reference=reference, flag=flag)
    elif delivery == NoticeDelivery.IMMEDIATELY:
        subject = flag or reference or reference_request
        outgoing.record(IMMEDIATE_KIND[NoticeEvent(event)], subject.pk)
    return delivery


def notify_high_flags(flags: list[Flag]) -> None:
    """A notice for a High signal among ``flags`` just raised, when it is the request's
    only open one: while another is unreviewed the recruiter has already been told to
    look at the request, and one office's referees would otherwise send a mail each
    within a minute (the alarm fatigue the grouped signals are there to end). Once
    every High signal is reviewed, the next one is told again."""
    for flag in flags:
        if flag.severity < Severity.HIGH:
            continue
        open_high = Flag.objects.filter(
            request_id=flag.request_id, severity__gte=Severity.HIGH, reviewed_at__isnull=True
        )
        if not open_high.exclude(pk=flag.pk).exists():
            notify(NoticeEvent.HIGH_FLAG, flag.request, reference=flag.reference, flag=flag)


def send_digests(*, now: datetime | None = None) -> int:
    """Gather each member's waiting notices into one digest mail (in the company's
    context; the daily maintenance calls it). A notice is taken by one conditional
    update, so two runs never put it in two digests. Returns how many were recorded."""
    now = now or timezone.now()
    # Notices already sent in a digest are kept as long as the digest's mail row.
    Notice.objects.filter(batch__isnull=False, created_at__lt=now - outgoing.SENT_KEPT).delete()
    recorded = 0
    waiting = Notice.objects.filter(batch__isnull=True, created_at__lte=now)
    for user_id in sorted(set(waiting.values_list("user_id", flat=True))):
        batch = uuid.uuid4()
        with company_db.atomic():
            if waiting.filter(user_id=user_id).update(batch=batch):
                outgoing.record("notice_digest", batch)
                recorded += 1
    return recorded
