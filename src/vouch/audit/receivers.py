"""Signal receivers that turn account events (django-allauth, django.contrib.auth) into
security events. Connected once, in ``AuditConfig.ready``. A failed sign-in's event is
recorded by vouch.guard.receivers, with the brute-force defence's own sampling.

Account events belong to the person, not to the company that happens to be current, so
they are recorded as platform events (``company=PLATFORM``)."""

from __future__ import annotations

import logging

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.contrib.auth import signals as auth_signals

from vouch.audit.events import PLATFORM, record
from vouch.audit.models import EventAction, Outcome

log = logging.getLogger("vouch.audit")


def _user_target(user) -> str:
    return f"user:{user.pk}" if user is not None and user.pk is not None else ""


def on_logged_in(sender, request, user, **kwargs) -> None:
    record(EventAction.AUTHN_LOGIN_SUCCESS, request=request, actor=user, company=PLATFORM, target=_user_target(user))


def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    record(EventAction.AUTHN_LOGOUT, request=request, actor=user, company=PLATFORM, target=_user_target(user))


def on_user_signed_up(sender, request, user, **kwargs) -> None:
    record(EventAction.USER_CREATED, request=request, actor=user, company=PLATFORM, target=_user_target(user))


def _account_event(action):
    def receiver(sender, request, user, **kwargs) -> None:
        record(action, request=request, actor=user, company=PLATFORM, target=_user_target(user))

    receiver.__name__ = f"on_{action}"
    return receiver


on_password_changed = _account_event(EventAction.AUTHN_PASSWORD_CHANGE)
on_password_set = _account_event(EventAction.AUTHN_PASSWORD_CHANGE)
on_password_reset = _account_event(EventAction.AUTHN_PASSWORD_RESET)


def on_email_changed(sender, request, user, from_email_address=None, to_email_address=None, **kwargs) -> None:
    record(EventAction.USER_EMAIL_CHANGED, request=request, actor=user, company=PLATFORM, target=_user_target(user))


def on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    user = email_address.user
    record(
        EventAction.USER_EMAIL_CONFIRMED,
        request=request,
        actor=user,
        company=PLATFORM,
        target=_user_target(user),
        details={"primary": bool(email_address.primary)},
    )


def _mfa_event(action, outcome=Outcome.SUCCESS):
    def receiver(sender, request, user, authenticator, **kwargs) -> None:
        record(
            action,
            request=request,
            actor=user,
            company=PLATFORM,
            target=_user_target(user),
            outcome=outcome,
            details={"method": str(authenticator.type)},
        )

    receiver.__name__ = f"on_{action}"
    return receiver


on_authenticator_added = _mfa_event(EventAction.AUTHN_MFA_ADDED)
on_authenticator_removed = _mfa_event(EventAction.AUTHN_MFA_REMOVED)
on_authenticator_reset = _mfa_event(EventAction.AUTHN_MFA_RESET)
on_mfa_failed = _mfa_event(EventAction.AUTHN_MFA_FAIL, Outcome.FAILURE)

CONNECTIONS = [
    (account_signals.user_logged_in, on_logged_in),
    (auth_signals.user_logged_out, on_logged_out),
    (account_signals.user_signed_up, on_user_signed_up),
    (account_signals.password_changed, on_password_changed),
    (account_signals.password_set, on_password_set),
    (account_signals.password_reset, on_password_reset),
    (account_signals.email_changed, on_email_changed),
    (account_signals.email_confirmed, on_email_confirmed),
    (mfa_signals.authenticator_added, on_authenticator_added),
    (mfa_signals.authenticator_removed, on_authenticator_removed),
    (mfa_signals.authenticator_reset, on_authenticator_reset),
    (mfa_signals.authentication_failed, on_mfa_failed),
]


def connect() -> None:
    for signal, receiver in CONNECTIONS:
        signal.connect(receiver, dispatch_uid=f"vouch.audit.{receiver.__name__}", weak=False)
