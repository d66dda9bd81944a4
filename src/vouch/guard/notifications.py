"""Account-change emails (P17, docs/security/promises.md#p17).

After every change that matters to an account's safety, its owner gets an email that
says what happened, when (in UTC), from where (the place from ``vouch.guard.geo`` and
the device from the User-Agent) and what to do if it was not them. Each kind has a
plain-text and an HTML template under ``guard/templates/guard/email/``.

Receivers for allauth's account and MFA signals are in ``vouch.guard.receivers``; role
changes arrive through ``vouch.accounts.members.role_changed``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone

from vouch.guard import geo, risk, sessions
from vouch.outbox import queue as outbox_queue
from vouch.outbox.backends import company_headers

log = logging.getLogger("vouch.guard")


@dataclass(frozen=True)
class Kind:
    name: str
    subject: str


PASSWORD_CHANGED = Kind("password_changed", "Your password was changed")
PASSWORD_RESET = Kind("password_reset", "Your password was reset")
EMAIL_CHANGED = Kind("email_changed", "Your account's email address was changed")
MFA_ADDED = Kind("mfa_added", "Two-factor authentication was added to your account")
MFA_REMOVED = Kind("mfa_removed", "Two-factor authentication was removed from your account")
RECOVERY_CODES = Kind("recovery_codes_regenerated", "New recovery codes were made for your account")
ROLE_CHANGED = Kind("role_changed", "Your role changed")
ACCOUNT_SUSPENDED = Kind("account_suspended", "Your account was suspended")
MEMBER_SUSPENDED = Kind("member_suspended", "A member's account was suspended")
RESTORE_PENDING = Kind("restore_pending", "Your password was reset: an administrator's approval is needed")
ACCOUNT_RESTORED = Kind("account_restored", "Your account was restored")
NEW_SIGN_IN = Kind("new_sign_in", "New sign-in to your account")
STEP_UP_CODE = Kind("step_up_code", "Your sign-in code")
SESSIONS_ENDED = Kind("sessions_ended", "You were signed out of Vouch")

KINDS = {
    kind.name: kind
    for kind in (
        PASSWORD_CHANGED,
        PASSWORD_RESET,
        EMAIL_CHANGED,
        MFA_ADDED,
        MFA_REMOVED,
        RECOVERY_CODES,
        ROLE_CHANGED,
        ACCOUNT_SUSPENDED,
        MEMBER_SUSPENDED,
        RESTORE_PENDING,
        ACCOUNT_RESTORED,
        NEW_SIGN_IN,
        STEP_UP_CODE,
        SESSIONS_ENDED,
    )
}


def absolute(path: str) -> str:
    return f"{settings.PUBLIC_URL}{path}"


def when_text(moment: datetime) -> str:
    """Like "Tuesday 4 March 2025 at 14:03 UTC": unambiguous wherever the reader is."""
    if timezone.is_aware(moment):
        moment = moment.astimezone(UTC)
    return dateformat.format(moment, r"l j F Y \a\t H:i \U\T\C")


def origin(request=None, *, ip: str | None = None, user_agent: str | None = None) -> dict:
    """Where and on what a change was made, for the email: place, device, address."""
    if request is not None:
        ip = ip or risk.client_ip(request)
        user_agent = user_agent if user_agent is not None else request.META.get("HTTP_USER_AGENT", "")
    if ip is None and user_agent is None:
        return {"place": "", "device": "", "ip": ""}
    location = geo.locate(ip)

    return {"place": location.describe(), "device": sessions.describe_device(user_agent or ""), "ip": ip or "unknown"}


def send(
    kind: Kind,
    user,
    *,
    request=None,
    to: list[str] | None = None,
    occurred_at: datetime | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    context: dict | None = None,
) -> bool:
    """Render and send one account email; return whether it was sent or kept to send.

    Never raises: the change it describes has already happened, and a sign-in or password
    change must not fail because mail is down (the message is kept and retried:
    vouch.outbox.queue); only a message that cannot even be rendered is lost, and logged."""
    recipients = [address for address in (to or [user.email]) if address]
    if not recipients:
        return False
    moment = occurred_at or timezone.now()
    data = {
        "kind": kind.name,
        "subject": kind.subject,
        "user": user,
        "when": when_text(moment),
        "reset_url": absolute(reverse("account_reset_password")),
        "security_url": absolute(reverse("account_email")),
        **origin(request, ip=ip, user_agent=user_agent),
        **(context or {}),
    }
    subject = f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{data['subject']}"
    try:
        text = render_to_string(f"guard/email/{kind.name}.txt", data)
        html = render_to_string(f"guard/email/{kind.name}.html", data)
        # A mail about a company (a role, a member) is that company's: purged with it.
        headers = company_headers(getattr(data.get("company"), "pk", None))
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, headers=headers)
        message.attach_alternative(html, "text/html")
        # Sent now, or kept and retried by the worker when the mail server is away.
        outbox_queue.send(message, kind.name)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("guard: could not send the %s email", kind.name)
        return False
    return True
