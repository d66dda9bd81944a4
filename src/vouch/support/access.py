"""What a live grant lets an operator do, for the hooks the lower layers call (P15).

``vouch.tenancy.middleware`` asks ``membership_for`` which company an operator is in
(the grant named in the session, only while it is live); ``vouch.accounts.policy``
asks ``allows`` before any action of an operator. Both are set in SupportConfig.ready()."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest

from vouch.accounts.models import Membership, User
from vouch.accounts.policy import MINIMUM_ROLE, Action, Role
from vouch.support import services
from vouch.support.models import Scope, SupportGrant

# The grant the operator opened, by id; checked against the database on every request.
SESSION_KEY = "vouch_support_grant"
# What a scope lets an operator do: a viewer's reading, or a recruiter's everyday work.
# Never more: members, roles, settings, security, exports and erasure stay the members'.
SCOPE_ROLES = {Scope.READ: Role.VIEWER, Scope.READ_WRITE: Role.RECRUITER}


def membership_for(request: HttpRequest) -> Membership | None:
    """An unsaved membership of the operator in the company of their live grant, or None
    (no grant in the session, or one that is pending, declined, revoked or expired)."""
    user = cast(User, request.user)  # called for signed-in operators only
    grant = services.live_grant(user, request.session.get(SESSION_KEY))
    if grant is None:
        request.session.pop(SESSION_KEY, None)
        return None
    membership = Membership(user=user, company=grant.company, role=SCOPE_ROLES[Scope(grant.scope)], is_active=True)
    membership.support_grant = grant  # type: ignore[attr-defined]  # what allows() checks
    request.support_grant = grant  # type: ignore[attr-defined]  # the banner and SupportMiddleware
    return membership


def grant_of(membership: Membership) -> SupportGrant | None:
    grant = getattr(membership, "support_grant", None)
    return grant if isinstance(grant, SupportGrant) else None


def allows(membership: Membership, action: Action) -> bool:
    """Whether the grant behind an operator's membership allows ``action`` now: live, of
    this company and this operator, and within its scope's role."""
    grant = grant_of(membership)
    if grant is None or grant.company_id != membership.company_id or grant.operator_id != membership.user_id:
        return False
    return grant.is_live() and MINIMUM_ROLE[action] <= SCOPE_ROLES[Scope(grant.scope)]


def on_company_purging(sender, company, **kwargs) -> None:
    SupportGrant.objects.filter(company=company).delete()
