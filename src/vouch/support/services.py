"""The support grant's moves: requested by an operator, approved or declined by an owner,
revoked by an owner, ended by its clock (P15). Each move is a security event in the
company's log (so its owners see it) and, where the owners must know, an email."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Role
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.support import emails
from vouch.support.models import MAX_HOURS, REASON_MAX, Scope, Status, SupportGrant
from vouch.tenancy.models import Company


class GrantError(ValueError):
    """A move that is not allowed; the message says why, in words for the page."""


def _target(grant: SupportGrant) -> str:
    return f"support_grant:{grant.pk}"


def owners(company: Company) -> list[User]:
    """The company's active owners: who decides on, and hears of, support access."""
    memberships = Membership.objects.filter(
        company=company, role=Role.OWNER, is_active=True, user__is_active=True
    ).select_related("user")
    return [membership.user for membership in memberships]


def check_hours(hours: int) -> int:
    if not 1 <= hours <= MAX_HOURS:
        raise GrantError(f"Support access lasts from 1 to {MAX_HOURS} hours.")
    return hours


def request_grant(
    request: HttpRequest | None, operator: User, company: Company, reason: str, hours: int
) -> SupportGrant:
    """An operator asks to see ``company``: every owner is emailed a link to review it."""
    if not operator.is_staff or not operator.is_active:
        raise GrantError("Only operators ask for support access.")
    if not company.is_active:
        raise GrantError("That company is not active.")
    reason = " ".join(reason.split())
    if not reason:
        raise GrantError("Say why you need access: the owners decide on it.")
    if len(reason) > REASON_MAX:
        raise GrantError(f"Keep the reason within {REASON_MAX} characters.")
    check_hours(hours)
    with transaction.atomic():
        grant = SupportGrant.objects.create(company=company, operator=operator, reason=reason, requested_hours=hours)
        record(
            EventAction.SUPPORT_GRANT_REQUESTED,
            request=request,
            actor=operator,
            company=company,
            target=_target(grant),
            details={"hours": hours},
        )
        transaction.on_commit(lambda: emails.requested(grant, owners(company)))
    return grant


def _locked(grant: SupportGrant) -> SupportGrant:
    return SupportGrant.objects.select_for_update().select_related("company", "operator").get(pk=grant.pk)


def _require_owner(owner: User, grant: SupportGrant) -> None:
    # The views check the policy first; asked again here, so a forgotten check is no hole.
    if not Membership.objects.filter(
        user=owner, company_id=grant.company_id, role=Role.OWNER, is_active=True, user__is_active=True
    ).exists():
        raise GrantError("Only an owner of the company decides on support access.")


def approve(request: HttpRequest | None, grant: SupportGrant, owner: User, *, hours: int, scope: str) -> SupportGrant:
    """The owner lets the operator in, from now, for ``hours`` (at most MAX_HOURS) and
    ``scope`` (read-only unless read-and-write was chosen)."""
    check_hours(hours)
    if scope not in Scope.values:
        raise GrantError("Choose read-only or read and write.")
    _require_owner(owner, grant)
    with transaction.atomic():
        grant = _locked(grant)
        if grant.status != Status.PENDING:
            raise GrantError("This request was already decided.")
        now = timezone.now()
        grant.status, grant.scope = Status.APPROVED, scope
        grant.decided_by, grant.decided_at = owner, now
        grant.starts_at, grant.expires_at = now, now + timedelta(hours=hours)
        grant.save()
        record(
            EventAction.SUPPORT_GRANT_APPROVED,
            request=request,
            actor=owner,
            company=grant.company_id,
            target=_target(grant),
            details={"hours": hours, "scope": scope},
        )
        transaction.on_commit(lambda: emails.started(grant, owners(grant.company)))
    return grant


def decline(request: HttpRequest | None, grant: SupportGrant, owner: User) -> SupportGrant:
    _require_owner(owner, grant)
    with transaction.atomic():
        grant = _locked(grant)
        if grant.status != Status.PENDING:
            raise GrantError("This request was already decided.")
        grant.status, grant.decided_by, grant.decided_at = Status.DECLINED, owner, timezone.now()
        grant.save()
        record(
            EventAction.SUPPORT_GRANT_DECLINED,
            request=request,
            actor=owner,
            company=grant.company_id,
            target=_target(grant),
        )
    return grant


def revoke(request: HttpRequest | None, grant: SupportGrant, owner: User) -> SupportGrant:
    """An owner ends a grant at once (a pending one is declined by this too)."""
    _require_owner(owner, grant)
    with transaction.atomic():
        grant = _locked(grant)
        now = timezone.now()
        if grant.status == Status.PENDING:
            grant.status, grant.decided_by, grant.decided_at = Status.DECLINED, owner, now
            grant.save()
            record(
                EventAction.SUPPORT_GRANT_DECLINED,
                request=request,
                actor=owner,
                company=grant.company_id,
                target=_target(grant),
            )
            return grant
        if not grant.is_live(now):
            raise GrantError("This support access has already ended.")
        grant.status, grant.revoked_by, grant.revoked_at, grant.ended_recorded_at = Status.REVOKED, owner, now, now
        grant.save()
        record(
            EventAction.SUPPORT_GRANT_REVOKED,
            request=request,
            actor=owner,
            company=grant.company_id,
            target=_target(grant),
        )
        transaction.on_commit(lambda: emails.ended(grant, owners(grant.company), revoked_by=owner))
    return grant


def record_expiry(grant: SupportGrant) -> bool:
    """Record the end of an expired grant, once (whoever notices first: a request, a page,
    ``expire_due``), and tell the owners. True if this call recorded it."""
    now = timezone.now()
    with transaction.atomic():
        claimed = SupportGrant.objects.filter(
            pk=grant.pk, status=Status.APPROVED, expires_at__lte=now, ended_recorded_at__isnull=True
        ).update(ended_recorded_at=now)
        if not claimed:
            return False
        grant = SupportGrant.objects.select_related("company").get(pk=grant.pk)
        record(
            EventAction.SUPPORT_GRANT_EXPIRED,
            company=grant.company_id,
            target=_target(grant),
            details={"expired_at": grant.expires_at.isoformat() if grant.expires_at else None},
        )
        transaction.on_commit(lambda: emails.ended(grant, owners(grant.company), revoked_by=None))
    return True


def expire_due(company: Company | None = None) -> int:
    """Record every expired grant not yet recorded (of ``company``, or all); how many."""
    due = SupportGrant.objects.filter(
        status=Status.APPROVED, expires_at__lte=timezone.now(), ended_recorded_at__isnull=True
    )
    if company is not None:
        due = due.filter(company=company)
    return sum(record_expiry(grant) for grant in due)


def live_grant(operator: User, grant_id: str | None) -> SupportGrant | None:
    """The operator's grant ``grant_id`` if it is live right now, else None (an expired
    one is recorded as it is noticed)."""
    if not grant_id or not operator.is_staff:
        return None
    try:
        grant = SupportGrant.objects.select_related("company", "decided_by").get(pk=grant_id, operator=operator)
    except (SupportGrant.DoesNotExist, ValidationError, ValueError):  # a session value that is no grant id
        return None
    if grant.is_expired():
        record_expiry(grant)
        return None
    if not grant.is_live() or not grant.company.is_active:
        return None
    return grant
