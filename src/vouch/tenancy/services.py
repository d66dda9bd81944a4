"""Creating companies and choosing a member's current company."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import connections, router, transaction

from vouch.accounts import policy
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Action, Role
from vouch.core.db import ComposedSQL, PreparedRows
from vouch.tenancy import provisioning
from vouch.tenancy.models import Company
from vouch.tenancy.signals import company_renamed
from vouch.vault import keyring

SESSION_COMPANY_KEY = "vouch_company"


def region_choices() -> list[tuple[str, str]]:
    return [(region, region.upper()) for region in settings.VOUCH_REGIONS]


def create_company(name: str, region: str, owner: User) -> Company:
    """A new company with ``owner`` as its first owner, and its own database in its region.

    The database is provisioned first; if recording the company then fails, the
    database is removed again, so no company row points nowhere and no database
    is left without a company."""
    if region not in settings.VOUCH_REGIONS:
        raise ValueError(f"unknown region {region!r}")
    company_id = uuid.uuid4()
    provisioning.provision(company_id, region)
    try:
        with transaction.atomic():
            company = Company.objects.create(id=company_id, name=name.strip(), region=region)
            keyring.create_company_keys(company_id)
            # The role's password is derived from those keys (vouch.vault.keyring.role_password).
            provisioning.set_role_password(company_id, region)
            Membership.objects.create(user=owner, company=company, role=Role.OWNER)
    except BaseException:
        provisioning.discard(company_id, region)
        keyring.discard_kek(company_id)  # made before the rows, which were rolled back
        raise
    return company


def active_memberships(user: User):
    return (
        Membership.objects.filter(user=user, is_active=True, company__is_active=True)
        .select_related("company", "user")
        .order_by("company__name")
    )


# The membership check runs on every signed-in request. Building its query with the
# ORM cost about ten times what running it did (~0.8 ms of Python per request on a
# small 2-core server, against ~0.15 ms), so its SQL is compiled once per engine
# (vouch.core.db) and its rows become instances without a queryset.
_COMPANY_FIELDS = [f.attname for f in Company._meta.concrete_fields]
_MEMBERSHIP_ROWS = PreparedRows(
    lambda user: (
        Membership.objects.filter(user_id=user, is_active=True, company__is_active=True)
        .order_by("company__name")
        .values_list("id", "role", *(f"company__{name}" for name in _COMPANY_FIELDS))
    ),
    user=-0x5E171E1,  # a sentinel: no user has this id
)


# The dashboard's member count, on every dashboard page (vouch.core.db.ComposedSQL).
MEMBER_COUNT = ComposedSQL(
    lambda n: (
        f"SELECT COUNT(*) FROM {n.table(Membership)} m "  # noqa: S608 (names from the model)
        f"WHERE {n.column(Membership, 'company', prefix='m.')} = %s "
        f"AND {n.column(Membership, 'is_active', prefix='m.')} = %s"
    )
)


def current_memberships(user: User) -> list[Membership]:
    """The same rows, in the same order, as ``list(active_memberships(user))``: the
    user's own active memberships in active companies. One query; for the check on
    every request.

    Each membership's ``user`` is ``user`` itself (not a second copy from a join),
    its ``company`` is loaded with it, and its ``created_at`` is read only if
    something asks for it."""
    db = router.db_for_read(Membership)
    memberships = []
    for membership_id, role, *company_values in _MEMBERSHIP_ROWS.fetch(using=db, user=user.pk):
        company = Company.from_db(db, _COMPANY_FIELDS, company_values)
        membership = Membership.from_db(
            db, ["id", "user_id", "company_id", "role", "is_active"], [membership_id, user.pk, company.pk, role, True]
        )
        membership.user = user
        membership.company = company
        memberships.append(membership)
    return memberships


def active_member_count(company: Company) -> int:
    """How many active members ``company`` has (the dashboard shows it)."""
    db = router.db_for_read(Membership)
    company_id = Membership._meta.get_field("company").get_db_prep_value(company.pk, connections[db])
    return MEMBER_COUNT.fetchone([company_id, True], using=db)[0]  # type: ignore[index]  # COUNT(*) always gives a row


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


def rename_company(company: Company, by: Membership, name: str) -> Company:
    """Change the company's name. Only the name: the region is never changed by a member."""
    policy.require(policy.can(by, Action.MANAGE_SETTINGS) and by.company_id == company.pk)
    name = name.strip()
    if not name:
        raise ValueError("A company needs a name.")
    before = company.name
    if name == before:
        return company
    Company.objects.filter(pk=company.pk, is_active=True).update(name=name)
    company.name = name
    # Into the company's activity log (vouch.activity, a layer above: tenancy.signals).
    company_renamed.send(sender=Company, company=company, before=before, after=name, actor=by.user)
    return company
