"""The signed device cookie: how Vouch recognises a browser that has signed in before.

The cookie ``__Host-vouch_device`` holds a random device id, signed with the secret key
(so a client cannot make one up), and is the same whichever account signs in from that
browser. The database keeps only the SHA-256 of the id (``KnownDevice.device_hash``), per
account, so a leaked table does not give out working cookies.

A known device lets its owner sign in while an attacker is hammering the account from
elsewhere (``vouch.guard.throttle`` lets it past the per-account and per-address
throttles, under a throttle of its own). The risk engine reads it as the "new device"
signal. The device is remembered only after a complete sign-in (password and, where set,
the second factor): ``AccountAdapter.post_login`` calls :func:`remember_device` after the
``user_logged_in`` signal, so receivers of that signal still see whether it was new."""

from __future__ import annotations

import hashlib
import re
import secrets

from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from vouch.guard.models import KnownDevice

COOKIE_NAME = "__Host-vouch_device"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie (RFC 6265bis)
_SALT = "vouch.guard.device"
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


def _device_id(request: HttpRequest) -> str | None:
    cached = getattr(request, "_vouch_device_id", False)
    if cached is not False:
        return cached  # type: ignore[return-value]  # typing debt: an Optional not narrowed here
    raw = request.COOKIES.get(COOKIE_NAME, "")
    device_id = None
    # A bounded length before any signature work: a cookie is attacker input.
    if raw and len(raw) < 200:
        try:
            value = signing.loads(raw, salt=_SALT)
        except signing.BadSignature:
            value = None
        if isinstance(value, str) and _ID.match(value):
            device_id = value
    request._vouch_device_id = device_id  # type: ignore[attr-defined]  # an attribute set at run time
    return device_id


def _hash(device_id: str) -> str:
    return hashlib.sha256(device_id.encode()).hexdigest()


def device_hash(request: HttpRequest) -> str | None:
    """The hashed id of this browser's verified device cookie, or None without a valid one."""
    device_id = _device_id(request)
    return _hash(device_id) if device_id else None


def is_known_device(request: HttpRequest, user) -> bool:
    """True when this browser has completed a sign-in to ``user``'s account before."""
    digest = device_hash(request)
    if digest is None or user is None or getattr(user, "pk", None) is None:
        return False
    return _known(user.pk, digest)


def _known(user_id: int, digest: str) -> bool:
    return KnownDevice.objects.filter(user_id=user_id, device_hash=digest).exists()


def user_agent_family(request: HttpRequest) -> str:
    """A coarse browser name for the sessions and sign-in pages (not a fingerprint)."""
    agent = request.META.get("HTTP_USER_AGENT", "")
    for token, name in (
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ):
        if token in agent:
            return name
    return agent.split("/", 1)[0][:64] if agent else ""


def set_cookie(response: HttpResponse, device_id: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        signing.dumps(device_id, salt=_SALT),
        max_age=COOKIE_MAX_AGE,
        path="/",  # required by the __Host- prefix, as are Secure and no Domain
        secure=True,
        httponly=True,
        samesite="Lax",
    )


def remember_device(request: HttpRequest, response: HttpResponse, user) -> str:
    """Record this browser as one of ``user``'s devices (a new cookie if it has none);
    return the device hash."""

    device_id = _device_id(request)
    if device_id is None:
        device_id = secrets.token_urlsafe(32)
        request._vouch_device_id = device_id  # type: ignore[attr-defined]  # an attribute set at run time
    digest = _hash(device_id)
    family = user_agent_family(request)
    updated = KnownDevice.objects.filter(user=user, device_hash=digest).update(
        user_agent_family=family, last_seen=timezone.now()
    )
    if not updated:
        try:
            with transaction.atomic():
                KnownDevice.objects.create(user=user, device_hash=digest, user_agent_family=family)
        except IntegrityError:
            pass  # the same browser signed in twice at once: already recorded
    set_cookie(response, device_id)
    return digest
