"""A member's active sessions: list them (device, place, last seen), end one or all.

Built on ``allauth.usersessions``: a UserSession row is made at each sign-in, pointing
at the server-side session. Ending a session deletes the session itself from the
session store (database, or cache + database), so its cookie stops working at once,
not merely the row that lists it.

"Last seen" is refreshed by ``vouch.guard.session_lifetime.SessionLifetimeMiddleware`` at
the same once-a-minute resolution as the idle clock (``touch``), instead of allauth's
write on every request."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from allauth.usersessions.models import UserSession
from django.http import HttpRequest
from django.utils import timezone

from vouch.accounts import policy
from vouch.audit import record
from vouch.audit.events import PLATFORM
from vouch.audit.models import EventAction
from vouch.guard import geo, notifications

# Browser and system names, most specific first (Edge and Opera also say "Chrome").
_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
    ("curl", re.compile(r"^curl/")),
)
_SYSTEMS = (
    ("iPhone", re.compile(r"iPhone")),
    ("iPad", re.compile(r"iPad")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)


def describe_device(user_agent: str) -> str:
    """A "Firefox on Windows"-style name from the User-Agent, or "Unknown device"."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def network_of(ip: str) -> str:
    """The address's network (/24 for IPv4, /48 for IPv6): where it is from, roughly,
    without pretending to a precision an address does not have."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown network"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def place_of(ip: str) -> str:
    """A country name from ``vouch.guard.geo`` when it is available, else the network."""
    country = _country(ip)
    network = network_of(ip)
    return f"{country} ({network})" if country else network


def _country(ip: str) -> str:
    lookup = getattr(geo, "country_name", None) or getattr(geo, "country", None)
    if lookup is None:
        return ""
    try:
        result = lookup(ip)
    except Exception:  # noqa: BLE001 - a place is a nicety; the list must still render
        return ""
    return str(result or "") if not hasattr(result, "country") else str(result.country or "")


@dataclass(frozen=True)
class SessionView:
    id: int
    device: str
    place: str
    ip: str
    started_at: datetime
    last_seen_at: datetime
    current: bool


def active_sessions(request: HttpRequest) -> list[SessionView]:
    """The signed-in user's live sessions, the current one first, then newest seen."""
    current_key = request.session.session_key
    sessions = UserSession.objects.purge_and_list(request.user)
    views = [
        SessionView(
            id=session.pk,
            device=describe_device(session.user_agent),
            place=place_of(session.ip),
            ip=session.ip,
            started_at=session.created_at,
            last_seen_at=session.last_seen_at,
            current=session.session_key == current_key,
        )
        for session in sessions
    ]
    views.sort(key=lambda view: (not view.current, -view.last_seen_at.timestamp()))
    return views


def end_session(request: HttpRequest, session_id: int) -> bool:
    """End one of the user's own sessions (never another user's: the lookup is by
    owner). Ending the current one is refused here: that is signing out."""
    session = UserSession.objects.filter(pk=session_id, user_id=request.user.pk).first()
    if session is None or session.session_key == request.session.session_key:
        return False
    _end([session], request, reason="ended_by_user")
    return True


def end_other_sessions(request: HttpRequest | None, user, *, reason: str) -> int:
    """End every session of ``user`` except the request's own (if the request is
    signed in as that user). Used by "end all others", and after a password change or
    reset."""
    keep = None
    if request is not None and getattr(request, "session", None) is not None and request.user.pk == user.pk:
        keep = request.session.session_key
    sessions = list(UserSession.objects.filter(user_id=user.pk).exclude(session_key=keep or ""))
    _end(sessions, request, reason=reason, user=user)
    return len(sessions)


def _end(sessions: list[UserSession], request, *, reason: str, user=None) -> None:
    _close(sessions)
    if sessions:
        actor = user or sessions[0].user
        record(
            EventAction.SESSION_REVOKED,
            request=request,
            actor=actor,
            company=PLATFORM,
            target=f"user:{actor.pk}",
            details={"sessions": len(sessions), "reason": reason},
        )


def _close(sessions: list[UserSession]) -> None:
    for session in sessions:
        # UserSession.end() deletes the session from the store (cache too, with
        # cached_db) and then the listing row.
        session.end()


def end_member_sessions(actor, target, *, request: HttpRequest | None = None) -> int:
    """An owner or admin ends every session of ``target``, a member of their company
    (``policy.can_end_sessions``); recorded in the company's security events, and the
    member is told by email. Returns how many sessions ended.

    Every session of the person ends, whichever company it was last used for: a
    session is the person's, not one company's."""
    policy.require(policy.can_end_sessions(actor, target))
    sessions = list(UserSession.objects.filter(user_id=target.user_id))
    _close(sessions)
    record(
        EventAction.SESSION_REVOKED,
        request=request,
        actor=actor.user,
        company=target.company_id,
        target=f"membership:{target.pk}",
        details={"user": f"user:{target.user_id}", "sessions": len(sessions), "reason": "ended_by_admin"},
    )
    if sessions:
        _tell(
            target.user,
            request,
            {
                "ended_by": actor.user,
                "ended_by_role": actor.get_role_display().lower(),
                "company": target.company,
                "count": len(sessions),
            },
        )
    return len(sessions)


def end_account_sessions(operator, user, *, request: HttpRequest | None = None) -> int:
    """An operator ends every session of any account (``policy.can_end_any_sessions``);
    recorded as a platform event, and the account's owner is told by email. An
    operator naming their own account keeps the session they are using."""
    policy.require(policy.can_end_any_sessions(operator))
    keep = request.session.session_key if request is not None and operator.pk == user.pk else None
    sessions = list(UserSession.objects.filter(user_id=user.pk).exclude(session_key=keep or ""))
    _close(sessions)
    record(
        EventAction.SESSION_REVOKED,
        request=request,
        actor=operator,
        company=PLATFORM,
        target=f"user:{user.pk}",
        details={"sessions": len(sessions), "reason": "ended_by_operator"},
    )
    if sessions:
        # Without the operator's place and device: the account's owner is told what
        # happened and by whom, not where the installation's operators work from.
        _tell(user, None, {"ended_by": None, "operator": True, "count": len(sessions)})
    return len(sessions)


def _tell(user, request, context: dict) -> None:
    notifications.send(notifications.SESSIONS_ENDED, user, request=request, context=context)


def cycle_key(request: HttpRequest) -> None:
    """Give the request's session a new key, keeping its data (and its place in the
    sessions list): after re-authentication, so a key seen before it (a fixation, a
    copied cookie) is worth nothing after it (ASVS 7.2.4)."""
    old = request.session.session_key
    request.session.cycle_key()
    if old:
        UserSession.objects.filter(session_key=old).update(session_key=request.session.session_key)


def touch(request: HttpRequest, now: datetime | None = None) -> None:
    """Refresh the listing's "last seen" and address for the request's session."""
    key = request.session.session_key
    if not key:
        return
    from allauth.account.adapter import get_adapter

    UserSession.objects.filter(session_key=key).update(
        last_seen_at=now or timezone.now(), ip=get_adapter().get_client_ip(request)
    )


# ------------------------------------------------------------------ signal receivers


def on_password_changed(sender, request, user, **kwargs) -> None:
    """Password changed while signed in: every other session ends (this one stays)."""
    end_other_sessions(request, user, reason="password_changed")


def on_password_reset(sender, request, user, **kwargs) -> None:
    """Password reset by email: every session of the account ends."""
    end_other_sessions(None, user, reason="password_reset")
