"""Signal receivers for suspicious-login detection, account-change emails and the failed
sign-in's security event. Connected once, from ``GuardConfig.ready``."""

from __future__ import annotations

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.contrib.auth import signals as auth_signals
from django.db import transaction

from vouch.accounts import members
from vouch.audit.events import PLATFORM, count_unrecorded, email_hash
from vouch.audit.models import EventAction, Outcome
from vouch.audit.sampling import record_sampled
from vouch.guard import failures, notifications, suspension, throttle


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


def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    """The authn_login_fail security event (moved here from vouch.audit.receivers: the
    sampling per account is the brute-force defence's, vouch.guard.throttle)."""
    try:
        _record_login_failure(credentials, request)
    except Exception as error:
        # The sampling's own bookkeeping may be what the full disk refused: still counted.
        count_unrecorded(error, EventAction.AUTHN_LOGIN_FAIL, Outcome.FAILURE)
        raise


def _record_login_failure(credentials, request) -> None:
    # Never the address itself (nor, of course, the password): a short keyed hash lets
    # repeated attempts on one address be correlated without storing it.
    email = str(credentials.get("email") or credentials.get("username") or "")
    # Sampled, so a flood of guesses cannot make the chained log a bottleneck: the first
    # failure per account per minute, with the count of those skipped since
    # (vouch.guard.throttle.sample_failure_event says why), and of those at most one per
    # network per minute (vouch.audit.sampling): guesses at many accounts from the
    # addresses of one network are one source.
    skipped = throttle.sample_failure_event(email)
    if skipped is None:
        return
    user = get_user_model().objects.filter(email__iexact=email).only("pk").first() if email else None
    details = {"email_hash": email_hash(email)} if email else {}
    if skipped:
        details["failures_not_recorded"] = skipped  # type: ignore[assignment]  # typing debt
    event = record_sampled(
        EventAction.AUTHN_LOGIN_FAIL,
        request=request,
        kind="authn_login_fail",
        actor=None,
        company=PLATFORM,
        target=f"user:{user.pk}" if user is not None and user.pk is not None else "",
        outcome=Outcome.FAILURE,
        details=details,
    )
    if event is None and skipped:
        throttle.return_skipped(email, skipped)  # the account's count waits for its next recorded event


def connect() -> None:
    pairs = [
        (account_signals.password_changed, on_password_changed),
        (account_signals.password_set, on_password_changed),
        (account_signals.password_reset, on_password_reset),
        (account_signals.email_changed, on_email_changed),
        (mfa_signals.authenticator_added, on_authenticator_added),
        (mfa_signals.authenticator_removed, on_authenticator_removed),
        (mfa_signals.authenticator_reset, on_authenticator_reset),
        # Recorded first, as when vouch.audit (before vouch.guard in INSTALLED_APPS) connected it.
        (auth_signals.user_login_failed, record_login_failure),
        (auth_signals.user_login_failed, failures.on_login_failed),
    ]
    role_changed = getattr(members, "role_changed", None)
    if role_changed is not None:
        pairs.append((role_changed, on_role_changed))
    for signal, receiver in pairs:
        signal.connect(receiver, dispatch_uid=f"vouch.guard.{receiver.__module__}.{receiver.__name__}", weak=False)
