"""Failed password checks on an account since its last completed sign-in, for the risk
engine's "many failures before this success" signal.

The brute-force counter (``AccountState.consecutive_failures``) is reset the moment the
password is right, before the risk engine looks; this count is reset only when a
sign-in goes all the way through (``StepUpStage.complete``). It is fed by Django's
``user_login_failed`` signal, which fires only for guesses that reached the password
check (the brute-force throttle refuses the rest before that), in the cache, for a day."""

from __future__ import annotations

from django.core.cache import cache

WINDOW = 24 * 3600


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


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    from vouch.accounts.models import User

    email = str(credentials.get("email") or credentials.get("username") or "").strip()
    if not email or len(email) > 254:
        return
    user_id = User.objects.filter(email__iexact=email).values_list("pk", flat=True).first()
    if user_id is not None:
        add(user_id)
