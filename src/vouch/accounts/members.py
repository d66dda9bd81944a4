"""Changing members' roles and deactivating them. A company always keeps an active owner."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from vouch.accounts import policy
from vouch.accounts.models import Membership
from vouch.accounts.policy import Action, Role
from vouch.accounts.signals import member_activity
from vouch.audit import record
from vouch.audit.models import EventAction

# Sent inside change_role's transaction with membership, before, after (Role), actor
# (User) and request; vouch.guard emails the member once the change commits.
role_changed = Signal()


class MemberError(Exception):
    """A message safe to show to the person who asked."""


def members_of(company) -> list[Membership]:
    return list(
        Membership.objects.filter(company=company).select_related("user").order_by("-is_active", "-role", "user__email")
    )


def company_members(actor: Membership):
    """The memberships of the actor's own company: the only ones an actor may name."""
    return Membership.objects.select_related("user").filter(company_id=actor.company_id)


def get_member(actor: Membership, membership_id: int) -> Membership:
    """A membership of the actor's own company, or DoesNotExist (a 404 to the caller)."""
    return company_members(actor).get(pk=membership_id)


def _other_active_owners(target: Membership) -> int:
    """Active owners of the target's company besides the target: those who remain."""
    return (
        Membership.objects.filter(company_id=target.company_id, role=Role.OWNER, is_active=True, user__is_active=True)
        .exclude(pk=target.pk)
        .count()
    )


@transaction.atomic
def change_role(actor: Membership, target: Membership, role: int, *, request=None) -> Membership:
    policy.require(policy.can_manage(actor, target, Action.CHANGE_ROLE) and policy.can_assign(actor, role))
    # Lock the company's memberships so two owners demoting each other at once
    # cannot leave the company with none.
    list(Membership.objects.select_for_update().filter(company_id=target.company_id))
    if target.role == Role.OWNER and role != Role.OWNER and not _other_active_owners(target):
        raise MemberError("A company must keep at least one active owner.")
    before = Role(target.role)
    target.role = role
    target.save(update_fields=["role"])
    # In this transaction: the event commits, or rolls back, with the change itself.
    record(
        EventAction.PRIVILEGE_PERMISSIONS_CHANGED,
        request=request,
        actor=actor.user,
        company=target.company_id,
        target=f"membership:{target.pk}",
        details={"user": f"user:{target.user_id}", "from": before.name.lower(), "to": Role(role).name.lower()},
    )
    role_changed.send(
        sender=Membership, membership=target, before=before, after=Role(role), actor=actor.user, request=request
    )
    member_activity.send(
        sender=Membership,
        company=target.company,
        action="role_changed",
        summary=f"{target.user} is now {Role(role).label} (was {before.label}).",
        actor=actor.user,
        details={"member": str(target.user), "from": before.label, "to": Role(role).label},
    )
    return target


@transaction.atomic
def set_active(actor: Membership, target: Membership, active: bool, *, request=None) -> Membership:
    policy.require(policy.can_manage(actor, target, Action.DEACTIVATE_MEMBER))
    list(Membership.objects.select_for_update().filter(company_id=target.company_id))
    if not active and target.role == Role.OWNER and not _other_active_owners(target):
        raise MemberError("A company must keep at least one active owner.")
    was_active = target.is_active
    target.is_active = active
    target.save(update_fields=["is_active"])
    if was_active != active:
        record(
            EventAction.MEMBER_REACTIVATED if active else EventAction.MEMBER_DEACTIVATED,
            request=request,
            actor=actor.user,
            company=target.company_id,
            target=f"membership:{target.pk}",
            details={"user": f"user:{target.user_id}", "role": Role(target.role).name.lower()},
        )
        member_activity.send(
            sender=Membership,
            company=target.company,
            action="member_reactivated" if active else "member_deactivated",
            summary=f"{target.user} was {'reactivated' if active else 'deactivated'}.",
            actor=actor.user,
            details={"member": str(target.user), "role": Role(target.role).label},
        )
    return target
