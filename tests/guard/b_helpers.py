"""Helpers for the two-factor, sessions and company security tests (engineer B's part)."""

from __future__ import annotations

from allauth.mfa.totp.internal import auth as totp_auth

from tests.conftest import PASSWORD, HTTPSClient
from tests.totp import current_code

PROXY = "10.9.9.9"


def sign_in(client: HTTPSClient, email: str, password: str = PASSWORD, **extra):
    """Through allauth's login view (so a listed user session is made)."""
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


def reauthenticate(client: HTTPSClient, **extra) -> None:
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}, **extra).status_code == 302


def totp_code(secret: str) -> str:
    return current_code(secret)


def give_totp(user) -> str:
    secret = totp_auth.generate_totp_secret()
    totp_auth.TOTP.activate(user, secret)
    return secret


def activate_totp(user) -> tuple[HTTPSClient, str, list[str]]:
    """TOTP activated through the pages; returns the signed-in client, the secret and
    the recovery codes the recovery-codes page shows (made with it)."""
    client = HTTPSClient()
    assert sign_in(client, user.email).status_code == 302
    reauthenticate(client)
    secret = client.get("/accounts/2fa/totp/activate/").context["form"].secret
    assert client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)}).status_code == 302
    page = client.get("/accounts/2fa/recovery-codes/")
    assert page.status_code == 200
    codes = list(page.context["unused_codes"])
    assert len(codes) == 10
    return client, secret, codes


def security_form(**overrides) -> dict:
    data = {
        "require_2fa_grace_days": "7",
        "idle_timeout_minutes": "",
        "absolute_timeout_hours": "",
        "allowed_networks": "",
        "min_password_length": "",
    }
    data.update({key: str(value) for key, value in overrides.items()})
    if data.get("require_2fa") in ("False", ""):
        data.pop("require_2fa")
    return data
