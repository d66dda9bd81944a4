"""Invitations: an owner or admin invites a person by email with a role.

The link carries a 256-bit random token; only its SHA-256 is stored. Following the
link parks the token in the session and redirects to a token-less address, so the
token never lingers in history, logs or Referer headers."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from allauth.account.adapter import get_adapter
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from vouch.accounts import policy
from vouch.accounts.models import Invitation, Membership, User
from vouch.accounts.policy import Action, Role
from vouch.accounts.signals import member_activity
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core.public import public_url
from vouch.tenancy.services import SESSION_COMPANY_KEY

INVITATION_LIFETIME = timedelta(days=7)
SESSION_KEY = "vouch_invitation"
log = logging.getLogger("vouch.accounts")


class InvitationError(Exception):
    """A message safe to show to the person who asked."""


class InvitationMailDelayed(InvitationError):
    """The invitation is saved and its email kept: the mail server did not take it now."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(request: HttpRequest, actor: Membership, email: str, role: int) -> Invitation:
    policy.require(policy.can(actor, Action.INVITE_MEMBER) and policy.can_assign(actor, role))
    email = email.strip().lower()
    company = actor.company
    if Membership.objects.filter(company=company, user__email__iexact=email).exists():
        raise InvitationError("That person is already a member of this company.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # A new invitation replaces any earlier pending one for the same address.
        Invitation.objects.filter(company=company, email=email, accepted_at=None, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        invitation = Invitation.objects.create(
            company=company,
            email=email,
            role=role,
            token_hash=_hash(token),
            invited_by=actor.user,
            expires_at=timezone.now() + INVITATION_LIFETIME,
        )
        # The invitee's address stays out of the log: the invitation's id points to it.
        record(
            EventAction.INVITATION_SENT,
            request=request,
            actor=actor.user,
            company=company,
            target=f"invitation:{invitation.pk}",
            details={"role": Role(role).name.lower()},
        )
        member_activity.send(
            sender=Invitation,
            company=company,
            action="member_invited",
            summary=f"{email} was invited as {Role(role).label}.",
            actor=actor.user,
            details={"invitation": invitation.pk, "email": email, "role": Role(role).label},
        )
    try:
        sent = get_adapter(request).send_mail(
            "accounts/email/invitation",
            email,
            {
                "company": company,
                "inviter": actor.user,
                "role": Role(role).label,
                "url": public_url(reverse("invitation_open", args=[token])),
                "expires_at": invitation.expires_at,
            },
        )
    except Exception as exc:
        # The invitation is saved, but nobody would ever hear of it: say so, never a
        # server error. Inviting again replaces it (and sends a new email).
        log.exception("accounts: could not send invitation %s", invitation.pk)
        raise InvitationError(
            f"The invitation to {email} is saved, but its email could not be sent. "
            "Try again in a few minutes: a new invitation replaces this one."
        ) from exc
    if sent is False:
        raise InvitationMailDelayed(
            f"The invitation to {email} is saved, but the mail server did not take its email just now. "
            "Vouch keeps trying for three days; the invitation stays valid meanwhile."
        )
    return invitation


def find_pending(token: str) -> Invitation | None:
    if not token or len(token) > 128:
        return None
    invitation = Invitation.objects.select_related("company").filter(token_hash=_hash(token)).first()
    if invitation is None or not invitation.is_pending or not invitation.company.is_active:
        return None
    return invitation


def park_in_session(request: HttpRequest, token: str) -> Invitation | None:
    invitation = find_pending(token)
    if invitation is None:
        request.session.pop(SESSION_KEY, None)
        return None
    request.session[SESSION_KEY] = token
    if not User.objects.filter(email__iexact=invitation.email).exists():
        # The person proved they read this inbox by following the link, so allauth
        # may treat the address as verified when they sign up with it.
        get_adapter(request).stash_verified_email(request, invitation.email)
    return invitation


def pending_from_session(request: HttpRequest) -> Invitation | None:
    token = request.session.get(SESSION_KEY)
    return find_pending(token) if token else None


def accept(invitation: Invitation, user: User, *, request: HttpRequest | None = None) -> Membership:
    """Join the company. Only the invited address may accept."""
    if user.email.lower() != invitation.email.lower():
        raise InvitationError("This invitation was sent to a different email address.")
    with transaction.atomic():
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
            accepted_at=timezone.now()
        )
        if not claimed:
            raise InvitationError("This invitation has already been used or withdrawn.")
        try:
            membership, created = Membership.objects.get_or_create(
                user=user, company=invitation.company, defaults={"role": invitation.role}
            )
        except IntegrityError as exc:  # pragma: no cover - concurrent double accept
            raise InvitationError("You are already a member of this company.") from exc
        if not created:
            if membership.is_active:
                raise InvitationError("You are already a member of this company.")
            membership.is_active = True
            membership.role = invitation.role
            membership.save(update_fields=["is_active", "role"])
        record(
            EventAction.INVITATION_ACCEPTED,
            request=request,
            actor=user,
            company=invitation.company_id,
            target=f"invitation:{invitation.pk}",
            details={"membership": f"membership:{membership.pk}", "role": Role(invitation.role).name.lower()},
        )
        member_activity.send(
            sender=Invitation,
            company=invitation.company,
            action="invitation_accepted",
            summary=f"{user} joined as {Role(invitation.role).label}.",
            actor=user,
            details={"invitation": invitation.pk, "role": Role(invitation.role).label},
        )
    return membership


def accept_pending_from_session(request: HttpRequest, user: User) -> Membership | None:
    invitation = pending_from_session(request)
    request.session.pop(SESSION_KEY, None)
    if invitation is None:
        return None
    membership = accept(invitation, user, request=request)
    request.session[SESSION_COMPANY_KEY] = str(membership.company_id)
    return membership


def revoke(actor: Membership, invitation_id: int, *, request: HttpRequest | None = None) -> Invitation:
    policy.require(policy.can(actor, Action.INVITE_MEMBER))
    invitation = Invitation.objects.get(pk=invitation_id, company=actor.company)
    if invitation.is_pending:
        with transaction.atomic():
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
            record(
                EventAction.INVITATION_REVOKED,
                request=request,
                actor=actor.user,
                company=actor.company_id,
                target=f"invitation:{invitation.pk}",
            )
            member_activity.send(
                sender=Invitation,
                company=actor.company,
                action="invitation_revoked",
                summary=f"The invitation to {invitation.email} was withdrawn.",
                actor=actor.user,
                details={"invitation": invitation.pk, "email": invitation.email},
            )
    return invitation


def pending_for_company(company) -> list[Invitation]:
    return [
        i
        for i in Invitation.objects.filter(company=company, accepted_at=None, revoked_at=None).select_related(
            "invited_by"
        )
        if i.is_pending
    ]
