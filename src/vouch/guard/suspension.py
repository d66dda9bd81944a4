"""Suspending an account, and restoring it (P16).

An account is suspended automatically by the risk engine (impossible travel, or any
score at the top), or at once by its owner through the "this wasn't me" link in a
new-sign-in email. Suspension ends every session of the account (server-side), emails
the person and the owners of their companies, and records a security event. A suspended
account cannot sign in: after a correct password the sign-in page says so and how to
get back in; a wrong password gets the usual answer, so suspension reveals nothing to
someone who does not know the password.

Restoring takes a password reset through the account's email (the password may be what
leaked), and where one of the person's companies asks for it
(``CompanySecuritySettings.restore_needs_admin_approval``) an approval by an admin of
that company on the "Suspended members" page."""

from __future__ import annotations

import logging
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from vouch.accounts import policy
from vouch.accounts.models import Membership
from vouch.accounts.policy import Action, Role
from vouch.audit import record
from vouch.audit.events import PLATFORM
from vouch.audit.models import EventAction, Outcome
from vouch.guard import notifications
from vouch.guard.models import AccountState, CompanySecuritySettings, SignIn
from vouch.guard.sessions import end_other_sessions

log = logging.getLogger("vouch.guard")

NOT_ME_SALT = "vouch.guard.not-me"
NOT_ME_MAX_AGE = 7 * 24 * 3600  # as long as a new-sign-in email stays relevant
REASON_MAX = 200


class SuspensionError(Exception):
    """A message safe to show to the person who asked."""


def state_of(user) -> AccountState | None:
    return AccountState.objects.filter(user_id=user.pk).first()


def is_suspended(user) -> bool:
    return AccountState.objects.filter(user_id=user.pk, suspended_at__isnull=False).exists()


def _owners_to_tell(user) -> list[tuple[Membership, list[str]]]:
    """(membership of ``user``, email addresses of that company's other active owners)."""
    result = []
    for membership in Membership.objects.filter(user=user, is_active=True).select_related("company"):
        owners = list(
            Membership.objects.filter(
                company_id=membership.company_id, role=Role.OWNER, is_active=True, user__is_active=True
            )
            .exclude(user=user)
            .values_list("user__email", flat=True)
        )
        if owners:
            result.append((membership, owners))
    return result


def suspend(user, *, reason: str, request=None, sign_in: SignIn | None = None, by_owner: bool = False) -> bool:
    """Suspend ``user``'s account: sessions ended, people told, event recorded.

    Returns False (and does nothing more) when it was already suspended."""
    now = timezone.now()
    with transaction.atomic():
        AccountState.objects.get_or_create(user=user)
        changed = AccountState.objects.filter(user=user, suspended_at__isnull=True).update(
            suspended_at=now, suspension_reason=reason[:REASON_MAX], awaiting_approval=False
        )
        if changed:
            record(
                EventAction.ACCOUNT_SUSPENDED,
                request=request,
                actor=user if by_owner else None,
                company=PLATFORM,
                target=f"user:{user.pk}",
                outcome=Outcome.BLOCKED,
                details={
                    "reason": reason[:REASON_MAX],
                    "by": "owner" if by_owner else "risk",
                    "sign_in": sign_in.pk if sign_in else None,
                },
            )
    # Sessions end whatever happened before: a second "not me" must still throw
    # everyone out.
    revoke_all_sessions(user, request=request)
    if not changed:
        return False
    where = {}
    if sign_in is not None:
        where = {"ip": sign_in.ip, "user_agent": None, "occurred_at": sign_in.occurred_at}
    context = {"reason": reason, "by_owner": by_owner}
    notifications.send(notifications.ACCOUNT_SUSPENDED, user, request=request, context=context, **where)  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
    for membership, owners in _owners_to_tell(user):
        notifications.send(
            notifications.MEMBER_SUSPENDED,
            user,
            request=request,
            to=owners,
            context={
                **context,
                "member": user,
                "company": membership.company,
                "suspended_url": notifications.absolute(reverse("guard_suspended_members")),
            },
            **where,  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
        )
    return True


def revoke_all_sessions(user, *, request=None) -> int:
    """End every server-side session of ``user``.

    Through allauth.usersessions where it is installed (its rows point at the sessions),
    then by scanning the session store itself, which also finds sessions made before the
    listing existed. Each session is deleted through its store, so with cached_db the
    cached copy goes too, not only the database row."""
    ended = 0
    if apps.is_installed("allauth.usersessions"):
        ended += end_other_sessions(None, user, reason="suspended")
    ended += _scan_store(user)
    return ended


def _scan_store(user) -> int:
    if not apps.is_installed("django.contrib.sessions"):
        return 0
    from django.contrib.sessions.models import Session

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):
        # A cache-only store cannot be listed; the usersessions rows are all there is.
        log.warning("guard: session store %s cannot be scanned", settings.SESSION_ENGINE)
        return 0
    wanted = str(user.pk)
    ended = 0
    rows = Session.objects.filter(expire_date__gt=timezone.now()).values_list("session_key", "session_data")
    for key, data in rows.iterator(chunk_size=500):
        store = store_class(session_key=key)
        if str(store.decode(data).get("_auth_user_id", "")) == wanted:
            store.delete(key)
            ended += 1
    return ended


# -------------------------------------------------------------------------- restoring


def needs_admin_approval(user) -> bool:
    company_ids = Membership.objects.filter(user=user, is_active=True).values("company_id")
    return CompanySecuritySettings.objects.filter(
        company_id__in=company_ids, restore_needs_admin_approval=True
    ).exists()


def after_password_reset(user, *, request=None) -> str:
    """A password reset through email lifts a suspension, or moves it on to waiting for
    an admin's approval. Returns "restored", "pending" or "" (was not suspended)."""
    with transaction.atomic():
        state = AccountState.objects.select_for_update().filter(user=user, suspended_at__isnull=False).first()
        if state is None:
            return ""
        if needs_admin_approval(user):
            if not state.awaiting_approval:
                state.awaiting_approval = True
                state.save(update_fields=["awaiting_approval"])
                record(
                    EventAction.ACCOUNT_RESTORE_PENDING,
                    request=request,
                    actor=user,
                    company=PLATFORM,
                    target=f"user:{user.pk}",
                )
            outcome = "pending"
        else:
            _lift(state)
            record(
                EventAction.ACCOUNT_RESTORED, request=request, actor=user, company=PLATFORM, target=f"user:{user.pk}"
            )
            outcome = "restored"
    if outcome == "pending":
        notifications.send(notifications.RESTORE_PENDING, user, request=request)
        for membership, _owners in _owners_to_tell(user):
            approvers = _approvers(membership)
            if approvers:
                notifications.send(
                    notifications.MEMBER_SUSPENDED,
                    user,
                    request=request,
                    to=approvers,
                    context={
                        "member": user,
                        "company": membership.company,
                        "pending": True,
                        "reason": state.suspension_reason,
                        "suspended_url": notifications.absolute(reverse("guard_suspended_members")),
                    },
                )
    else:
        notifications.send(notifications.ACCOUNT_RESTORED, user, request=request)
    return outcome


def _approvers(membership: Membership) -> list[str]:
    """Who may approve: the company's other active admins and owners."""
    return list(
        Membership.objects.filter(
            company_id=membership.company_id, role__gte=Role.ADMIN, is_active=True, user__is_active=True
        )
        .exclude(user_id=membership.user_id)
        .values_list("user__email", flat=True)
    )


def _lift(state: AccountState) -> None:
    state.suspended_at = None
    state.suspension_reason = ""
    state.awaiting_approval = False
    state.save(update_fields=["suspended_at", "suspension_reason", "awaiting_approval"])


def suspended_members(company) -> list[tuple[Membership, AccountState]]:
    """The company's members whose accounts are suspended, longest-suspended first."""
    memberships = Membership.objects.filter(company=company).select_related("user")
    states = {
        state.user_id: state
        for state in AccountState.objects.filter(
            user_id__in=memberships.values("user_id"), suspended_at__isnull=False
        ).order_by("suspended_at")
    }
    rows = [(m, states[m.user_id]) for m in memberships if m.user_id in states]
    rows.sort(key=lambda row: row[1].suspended_at)  # type: ignore[arg-type, return-value]  # typing debt: an Optional not narrowed here
    return rows


def approve(actor: Membership, target: Membership, *, request=None) -> None:
    """An admin approves restoring ``target``'s account (after its password reset)."""
    policy.require(policy.can_manage(actor, target, Action.DEACTIVATE_MEMBER))
    with transaction.atomic():
        state = AccountState.objects.select_for_update().filter(user_id=target.user_id).first()
        if state is None or not state.is_suspended:
            raise SuspensionError(f"{target.user} is not suspended.")
        if not state.awaiting_approval:
            raise SuspensionError(f"{target.user} has not reset their password yet: that comes first.")
        _lift(state)
        record(
            EventAction.ACCOUNT_RESTORED,
            request=request,
            actor=actor.user,
            company=actor.company_id,
            target=f"user:{target.user_id}",
            details={"approved_by": f"user:{actor.user_id}"},
        )
    notifications.send(
        notifications.ACCOUNT_RESTORED,
        target.user,
        request=request,
        context={"approved_by": actor.user, "company": actor.company},
    )


# ----------------------------------------------------------------- "this wasn't me"


def not_me_token(sign_in: SignIn) -> str:
    return signing.dumps({"s": sign_in.pk, "u": sign_in.user_id}, salt=NOT_ME_SALT, compress=True)


def not_me_url(sign_in: SignIn) -> str:
    return notifications.absolute(reverse("guard_not_me", args=[not_me_token(sign_in)]))


def sign_in_for_token(token: str) -> SignIn | None:
    """The sign-in a "this wasn't me" link names, if the link is genuine, unexpired and
    unused; None otherwise (one answer for all three: nothing to learn by probing)."""
    if not token or len(token) > 300:
        return None
    try:
        data = signing.loads(token, salt=NOT_ME_SALT, max_age=NOT_ME_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    sign_in = SignIn.objects.select_related("user").filter(pk=data.get("s"), user_id=data.get("u")).first()  # type: ignore[misc]  # typing debt: an Optional not narrowed here
    if sign_in is None or sign_in.reported_at is not None:
        return None
    return sign_in


def report_not_me(token: str, *, request=None) -> SignIn | None:
    """Use a "this wasn't me" link: mark it used and suspend the account at once."""
    with transaction.atomic():
        sign_in = sign_in_for_token(token)
        if sign_in is None:
            return None
        # Single use: the conditional update lets exactly one request through.
        if not SignIn.objects.filter(pk=sign_in.pk, reported_at__isnull=True).update(reported_at=timezone.now()):
            return None
    suspend(
        sign_in.user,
        reason="The account holder said a sign-in was not them.",
        request=request,
        sign_in=sign_in,
        by_owner=True,
    )
    return sign_in
