"""Reads of control-database users and memberships for company code: the one place a
company feature (references, activity, ...) asks who a user id is.

Company databases cannot hold a foreign key to a user (users live in the control
database), so company rows keep a user's id, and pages, reports, mails and tasks turn
it back into a name, an email or a user here, the way Sentry's ``user_service`` serves
its region silos. It lives with the identity models so the dependency points one way:
feature code -> ``vouch.accounts`` (identity) -> ``vouch.tenancy``; nothing here
imports a company app. Models are imported when called, so a feature module can import
this one before Django is set up (the command line builds its parser first)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import router

from vouch.accounts.models import Membership, User
from vouch.core.db import PreparedRows

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from vouch.accounts.models import User
    from vouch.tenancy.models import Company


def member_names(user_ids: Iterable[int | None]) -> dict[int, str]:
    """Display names (the full name, else the email) by user id, in one query. Blank ids
    are skipped; a user who no longer exists is simply absent from the result."""

    ids = {user_id for user_id in user_ids if user_id}
    if not ids:
        return {}
    return {
        pk: full_name or email
        for pk, full_name, email in User.objects.filter(pk__in=ids).values_list("pk", "full_name", "email")
    }


def _members_query(company: uuid.UUID) -> QuerySet:
    return (
        Membership.objects.filter(company_id=company)
        .order_by("user__full_name", "user__email")
        .values_list("user_id", "user__full_name", "user__email")
    )


# Prepared: every dashboard view reads it.
_MEMBERS = PreparedRows(_members_query, company=uuid.UUID(int=0x5E171E1))


def company_members(company: Company) -> dict[int, str]:
    """The company's members (active or not) by user id, for the recruiter filter and
    the names on the page: one query."""

    rows = _MEMBERS.fetch(using=router.db_for_read(Membership), company=company.pk)
    return {user_id: full_name or email for user_id, full_name, email in rows}


def active_emails(user_ids: Iterable[int | None]) -> list[str]:
    """The email addresses of those of the users who are still active (blank ids skipped)."""

    return list(
        User.objects.filter(pk__in=[pk for pk in user_ids if pk], is_active=True).values_list("email", flat=True)
    )


def user_or_none(user_id: int | None) -> User | None:
    """The user with this id, or None when the id is blank or the user is gone."""

    return User.objects.filter(pk=user_id).first() if user_id else None


def member_email(company_id: uuid.UUID, user_id: int | None) -> str:
    """The email of the user if they are active and still an active member of the
    company, else "": a notice is never mailed to someone who has left it."""

    if not user_id:
        return ""
    row = (
        Membership.objects.filter(company_id=company_id, user_id=user_id, is_active=True, user__is_active=True)
        .values_list("user__email", flat=True)
        .first()
    )
    return row or ""
