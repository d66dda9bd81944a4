"""The owners' emails about support access (P15): a request to review, access started,
access ended. Sent through the outbox, marked as the company's (purged with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse

from vouch.guard.notifications import when_text
from vouch.outbox import queue as outbox_queue

if TYPE_CHECKING:
    from vouch.accounts.models import User
    from vouch.support.models import SupportGrant


def _send(name: str, subject: str, grant: SupportGrant, recipients: list[User], context: dict) -> int:
    """One message per owner (no owner sees another's address); how many went out. A
    failure is logged, not raised: the move it announces has happened and is recorded."""
    company = grant.company
    # A subject is one line of plain text whatever the company is called.
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(subject.split())
    data = {
        "grant": grant,
        "company_name": company.name,
        "operator": grant.operator.email,
        "reason": grant.reason,
        "review_url": f"{settings.PUBLIC_URL}{reverse('support_review', args=[grant.pk])}",
        "grants_url": f"{settings.PUBLIC_URL}{reverse('support_grants')}",
        "until": when_text(grant.expires_at) if grant.expires_at else "",
        **context,
    }
    return outbox_queue.send_each(
        f"support/email/{name}", subject, data, recipients, company_id=company.pk, kind=f"support_{name}"
    )


def requested(grant: SupportGrant, owners: list[User]) -> int:
    return _send("requested", f"An operator asks for support access to {grant.company.name}", grant, owners, {})


def started(grant: SupportGrant, owners: list[User]) -> int:
    decided_by = grant.decided_by
    return _send(
        "started",
        f"Support access to {grant.company.name} has started",
        grant,
        owners,
        {"granted_by": str(decided_by) if decided_by else "", "scope": grant.get_scope_display().lower()},
    )


def ended(grant: SupportGrant, owners: list[User], *, revoked_by: User | None) -> int:
    return _send(
        "ended",
        f"Support access to {grant.company.name} has ended",
        grant,
        owners,
        {"revoked_by": str(revoked_by) if revoked_by else ""},
    )
