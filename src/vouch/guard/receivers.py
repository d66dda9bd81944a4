"""Signal receivers for suspicious-login detection and account-change emails.
Connected once, from ``GuardConfig.ready``."""

from __future__ import annotations

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth import signals as auth_signals
from django.db import transaction

from vouch.guard import failures, notifications, suspension


def on_password_changed(sender, request, user, **kwargs) -> None:
    notifications.send(notifications.PASSWORD_CHANGED, user, request=request)


def on_password_reset(sender, request, user, **kwargs) -> None:
    notifications.send(notifications.PASSWORD_RESET, user, request=request)
    # The emailed reset is how a suspended account comes back (with an admin's
    # approval where its company asks for one).
    suspension.after_password_reset(user, request=request)


def on_email_changed(sender, request, user, from_email_address=None, to_email_address=None, **kwargs) -> None:
    if from_email_address is None:
        # allauth (with CHANGE_EMAIL) sends email_changed when any address is confirmed,
        # the first one at sign-up too; with no address before it, nothing was changed,
        # and an "if it was not you" alarm would be false.
        return
    old = getattr(from_email_address, "email", "") or ""
    new = getattr(to_email_address, "email", "") or user.email
    context = {"old_email": old, "new_email": new}
    notifications.send(notifications.EMAIL_CHANGED, user, request=request, to=[new], context=context)
    if old and old.lower() != new.lower():
        # The old address is the one that can tell us it was a takeover.
        notifications.send(
            notifications.EMAIL_CHANGED, user, request=request, to=[old], context={**context, "to_old": True}
        )


def _method(authenticator) -> str:
    return {
        Authenticator.Type.TOTP: "an authenticator app",
        Authenticator.Type.WEBAUTHN: "a security key or passkey",
        Authenticator.Type.RECOVERY_CODES: "recovery codes",
    }.get(authenticator.type, str(authenticator.type))


def on_authenticator_added(sender, request, user, authenticator, **kwargs) -> None:
    # Recovery codes made automatically with a first method are part of that change.
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        return
    notifications.send(notifications.MFA_ADDED, user, request=request, context={"method": _method(authenticator)})


def on_authenticator_removed(sender, request, user, authenticator, **kwargs) -> None:
    # Dangling recovery codes go with the last method: one email for the removal.
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        return
    notifications.send(notifications.MFA_REMOVED, user, request=request, context={"method": _method(authenticator)})


def on_authenticator_reset(sender, request, user, authenticator, **kwargs) -> None:
    notifications.send(notifications.RECOVERY_CODES, user, request=request)


def on_role_changed(sender, membership, before, after, actor=None, request=None, **kwargs) -> None:
    def send() -> None:
        notifications.send(
            notifications.ROLE_CHANGED,
            membership.user,
            request=request,
            context={"company": membership.company, "before": before, "after": after, "changed_by": actor},
        )

    # Sent once the change is committed: a rolled-back change announces nothing.
    transaction.on_commit(send)


def connect() -> None:
    from vouch.accounts import members

    pairs = [
        (account_signals.password_changed, on_password_changed),
        (account_signals.password_set, on_password_changed),
        (account_signals.password_reset, on_password_reset),
        (account_signals.email_changed, on_email_changed),
        (mfa_signals.authenticator_added, on_authenticator_added),
        (mfa_signals.authenticator_removed, on_authenticator_removed),
        (mfa_signals.authenticator_reset, on_authenticator_reset),
        (auth_signals.user_login_failed, failures.on_login_failed),
    ]
    role_changed = getattr(members, "role_changed", None)
    if role_changed is not None:
        pairs.append((role_changed, on_role_changed))
    for signal, receiver in pairs:
        signal.connect(receiver, dispatch_uid=f"vouch.guard.{receiver.__module__}.{receiver.__name__}", weak=False)
