"""Two-factor rules around django-allauth's MFA (P19).

allauth does TOTP, WebAuthn (security keys and passkeys) and recovery codes. Vouch adds:
an owner or admin of a company that requires 2FA cannot remove their last real second
factor (recovery codes alone do not count: they are a fallback, not a method); the
secrets behind TOTP and recovery codes are sealed at rest (``mfa_secrets``), and a
secret that fails its integrity check refuses the sign-in with a clear message."""

from __future__ import annotations

from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base import forms as allauth_forms
from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from vouch.accounts.policy import Role
from vouch.guard import mfa_secrets
from vouch.guard.company_security import companies_requiring_2fa
from vouch.vault import account_secrets

# The methods that make an account "have 2FA"; recovery codes only back them up.
PRIMARY_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
# Who must keep 2FA once their company requires it (members may fall behind during the
# grace period; the people who can change security settings may not switch it off).
KEEPERS = (Role.OWNER, Role.ADMIN)


def has_2fa(user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return Authenticator.objects.filter(user_id=user.pk, type__in=PRIMARY_TYPES).exists()


def must_keep_2fa(user) -> list:
    """The companies (memberships) that forbid ``user`` from turning 2FA off."""

    return companies_requiring_2fa(user, roles=KEEPERS)


def can_remove(authenticator: Authenticator) -> bool:
    """Whether removing ``authenticator`` is allowed: always, unless it is the user's
    last TOTP/WebAuthn method and one of their companies makes them keep 2FA."""
    if authenticator.type not in PRIMARY_TYPES:
        return True
    others = (
        Authenticator.objects.filter(user_id=authenticator.user_id, type__in=PRIMARY_TYPES)
        .exclude(pk=authenticator.pk)
        .exists()
    )
    return others or not must_keep_2fa(authenticator.user)


class MFAAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": _(
            "Your company requires two-factor authentication for owners and admins: add another "
            "method (an authenticator app or a security key) before you remove this one."
        ),
    }

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        return can_remove(authenticator)

    # allauth passes TOTP secrets and recovery-code seeds through these; the sealing
    # itself happens where the row is known (see vouch.guard.mfa_secrets).
    def encrypt(self, text: str) -> str:
        return mfa_secrets.encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return mfa_secrets.decrypt(encrypted_text)


UNREADABLE_SECRET = _(
    "Your two-factor settings failed an integrity check, so Vouch cannot check this code. The failure has been "
    "recorded; ask an administrator of your company (or the operator) for help."
)


class _RefuseUnreadable:
    """Sign-in with a code whose secret does not open is refused with a clear message
    (and the failure recorded by ``mfa_secrets``), never a server error."""

    def clean_code(self) -> str:
        try:
            return super().clean_code()  # type: ignore[misc]  # typing debt
        except mfa_secrets.SecretUnreadable as exc:
            account_secrets.ensure_recorded(exc)
            raise forms.ValidationError(UNREADABLE_SECRET, code="unreadable_secret") from None


class AuthenticateForm(_RefuseUnreadable, allauth_forms.AuthenticateForm):
    pass


class ReauthenticateForm(_RefuseUnreadable, allauth_forms.ReauthenticateForm):
    pass


UNREADABLE_PAGE = _(
    "Your two-factor settings failed an integrity check, so Vouch will not use them; the failure has been "
    "recorded. Remove the authenticator app and set it up again (that also makes new recovery codes), or ask an "
    "administrator of your company for help."
)


class UnreadableSecretMiddleware:
    """A signed-in page that needs a two-factor secret that does not open (showing or
    regenerating recovery codes) sends its owner to the 2FA page with a clear message,
    not a server error: from there they can remove the method and set it up again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, mfa_secrets.SecretUnreadable):
            return None
        account_secrets.ensure_recorded(exception)  # the view's transaction may have rolled back
        index = reverse("mfa_index")
        if request.path == index or not request.user.is_authenticated:
            return None  # the integrity error page (vouch.web.errors)
        messages.error(request, UNREADABLE_PAGE)
        return redirect(index)
