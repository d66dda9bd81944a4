"""Failed password checks, for two risk signals: on an account since its last completed
sign-in ("many failures before this success"), and the distinct accounts that failed
from one address in the last hour ("one address trying many accounts"; only failures
count, so an office behind one address signing in normally is not a suspect).

The brute-force counter (``AccountState.consecutive_failures``) is reset the moment the
password is right, before the risk engine looks; this count is reset only when a
sign-in goes all the way through (``StepUpStage.complete``). It is fed by Django's
``user_login_failed`` signal, which fires only for guesses that reached the password
check (the brute-force throttle refuses the rest before that), in the cache, for a day."""

from __future__ import annotations

import hashlib
import ipaddress

from django.conf import settings
from django.core.cache import cache

from vouch.accounts.models import User

WINDOW = 24 * 3600
ADDRESS_WINDOW = 3600


def _key(user_id: int) -> str:
    return f"guard:failures:{user_id}"


def count(user) -> int:
    return int(cache.get(_key(user.pk)) or 0)


def add(user_id: int) -> None:
    key = _key(user_id)
    if cache.add(key, 1, timeout=WINDOW):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=WINDOW)


def reset(user) -> None:
    cache.delete(_key(user.pk))


def counts(user, ip: str | None) -> tuple[int, int]:
    """(failures on ``user`` since its last sign-in, accounts failed from ``ip``) in one
    cache round trip: the risk engine runs on every sign-in."""
    keys = [_key(user.pk)] + ([f"guard:ipfail:{ip}:n"] if ip else [])
    values = cache.get_many(keys)
    return int(values.get(keys[0]) or 0), int(values.get(keys[-1]) or 0) if ip else 0


def accounts_failed_from(ip: str) -> int:
    """Distinct accounts (registered or not) with a failed password from ``ip`` lately."""
    return int(cache.get(f"guard:ipfail:{ip}:n") or 0)


def _add_address(ip: str, account: str) -> None:
    if not cache.add(f"guard:ipfail:{ip}:{account}", 1, timeout=ADDRESS_WINDOW):
        return  # this account already counted for this address
    count_key = f"guard:ipfail:{ip}:n"
    if cache.add(count_key, 1, timeout=ADDRESS_WINDOW):
        return
    try:
        cache.incr(count_key)
    except ValueError:
        cache.set(count_key, 1, timeout=ADDRESS_WINDOW)


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "").strip().lower()
    if not email or len(email) > 254:
        return
    user_id = User.objects.filter(email__iexact=email).values_list("pk", flat=True).first()
    if user_id is not None:
        add(user_id)
    raw = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    try:
        ip = str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return
    # Unknown addresses count too (stuffing lists are mostly other sites' users), by
    # a keyed hash: the cache never holds the typed address.
    account = hashlib.sha256(f"{settings.SECRET_KEY}:{email}".encode()).hexdigest()[:24]
    _add_address(ip, account)
