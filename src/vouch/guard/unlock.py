"""The emailed unlock link and the brute-force emails (P13).

When an account first gets throttled (``vouch.guard.throttle``), its owner is emailed a
link that makes the browser it is opened in a known device of that account, so the
owner can sign in while an attacker keeps the account throttled everywhere else. The
link is signed (it names the account and a nonce), expires after an hour, works once
(the nonce's hash is kept in ``AccountState.unlock_nonce_hash`` and cleared on use, so a
cache flush cannot revive it), and only the latest one sent works. It does not re-enable
a password turned off after 100 failures: only a password reset does that.

Opening the link (GET) only shows a page with a button: mail scanners fetch links, and
must not use them up."""

from __future__ import annotations

import hashlib
import logging
import secrets

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from vouch.accounts.models import User
from vouch.audit.events import PLATFORM, record
from vouch.audit.models import EventAction
from vouch.guard import devices, throttle
from vouch.guard.models import AccountState

log = logging.getLogger("vouch.guard.unlock")
UNLOCK_MAX_AGE = 3600
_SALT = "vouch.guard.unlock"
TOKEN_MAX_LENGTH = 300


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def make_token(user) -> str:
    """A fresh unlock token for ``user``; any earlier one stops working."""

    nonce = secrets.token_urlsafe(24)
    AccountState.objects.get_or_create(user=user)
    AccountState.objects.filter(user=user).update(unlock_nonce_hash=_nonce_hash(nonce))
    return signing.dumps({"u": user.pk, "n": nonce}, salt=_SALT, compress=False)


def _read(token: str) -> tuple[int, str] | None:
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    try:
        data = signing.loads(token, salt=_SALT, max_age=UNLOCK_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("n"), str):
        return None
    return data["u"], data["n"]


def check_token(token: str):
    """The account a valid, unexpired, unused token belongs to; None otherwise (no state change)."""

    read = _read(token)
    if read is None:
        return None
    user_id, nonce = read
    return User.objects.filter(pk=user_id, is_active=True, guard_state__unlock_nonce_hash=_nonce_hash(nonce)).first()


def use_token(token: str):
    """Consume the token (once, atomically); return its account, or None."""

    read = _read(token)
    if read is None:
        return None
    user_id, nonce = read
    used = AccountState.objects.filter(user_id=user_id, unlock_nonce_hash=_nonce_hash(nonce)).update(
        unlock_nonce_hash=""
    )
    if not used:
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


def _absolute(path: str) -> str:
    # The configured public address, never the request's Host header.
    return settings.PUBLIC_URL + path


def unlock_url(user) -> str:
    return _absolute(reverse("bruteforce_unlock", args=[make_token(user)]))


def _send(request: HttpRequest | None, template: str, user, context: dict) -> None:
    # allauth's mailer reads the current request from its own context; outside a view
    # (a script, the bench) there is none, so provide it. A mail failure is logged and
    # never turns a refused sign-in into an error page.
    from allauth.core import context as allauth_context

    try:
        if request is not None and allauth_context.request is None:
            with allauth_context.request_context(request):
                get_adapter(request).send_mail(template, user.email, context)
        else:
            get_adapter(request).send_mail(template, user.email, context)
    except Exception:  # noqa: BLE001
        log.exception("guard: could not send %s to user %s", template, user.pk)


def send_unlock_mail(request: HttpRequest | None, user) -> None:
    _send(
        request,
        "guard/email/signin_throttled",
        user,
        {"user": user, "url": unlock_url(user), "minutes": UNLOCK_MAX_AGE // 60},
    )


def password_reset_url(user) -> str:
    from allauth.account.forms import default_token_generator
    from allauth.account.utils import user_pk_to_url_str

    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    return _absolute(path)


def send_password_disabled_mail(request: HttpRequest | None, user) -> None:
    _send(
        request,
        "guard/email/password_disabled",
        user,
        {"user": user, "url": password_reset_url(user), "cap": throttle.PASSWORD_FAILURE_CAP},
    )


# -- the page the link opens ---------------------------------------------------------


@require_http_methods(["GET", "POST"])
def unlock_view(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        user = check_token(token)
        if user is None:
            return _invalid(request)
        return render(request, "guard/unlock.html", {"email": user.email})
    user = use_token(token)
    if user is None:
        return _invalid(request)

    response = HttpResponseRedirect(reverse("account_login"))
    devices.remember_device(request, response, user)
    record(EventAction.AUTHN_LOGIN_UNLOCK, request=request, actor=user, company=PLATFORM, target=f"user:{user.pk}")
    messages.success(request, "This browser is unlocked for your account. Sign in with your password.")
    return response


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "guard/unlock_invalid.html", status=400)
