"""Creating companies and choosing a member's current company."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Role
from vouch.tenancy.models import Company

SESSION_COMPANY_KEY = "vouch_company"


def region_choices() -> list[tuple[str, str]]:
    return [(region, region.upper()) for region in settings.VOUCH_REGIONS]


@transaction.atomic
def create_company(name: str, region: str, owner: User) -> Company:
    """A new company with ``owner`` as its first owner."""
    if region not in settings.VOUCH_REGIONS:
        raise ValueError(f"unknown region {region!r}")
    company = Company.objects.create(name=name.strip(), region=region)
    Membership.objects.create(user=owner, company=company, role=Role.OWNER)
    return company


def active_memberships(user: User):
    return (
        Membership.objects.filter(user=user, is_active=True, company__is_active=True)
        .select_related("company", "user")
        .order_by("company__name")
    )


def choose_membership(memberships: list[Membership], company_id: str | None) -> Membership | None:
    """The membership for the company in the session, or the user's first one.

    Fails closed: only the user's own active memberships are candidates, so a
    company id from anywhere else is never chosen."""
    for membership in memberships:
        if str(membership.company_id) == company_id:
            return membership
    return memberships[0] if memberships else None


def switch_company(session, user: User, company_id: str) -> Membership | None:
    """Make ``company_id`` current if the user is an active member; None otherwise."""
    membership = active_memberships(user).filter(company_id=company_id).first()
    if membership is not None:
        session[SESSION_COMPANY_KEY] = str(membership.company_id)
    return membership
