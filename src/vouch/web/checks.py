"""Production start-up checks: Vouch refuses to run insecurely (``vouch check --deploy``
and ``vouch serve`` run them; in production mode an error stops the start)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

WEAK_SECRET_MARKERS = ("insecure", "change", "secret", "default", "example")


@register()
def configuration(app_configs, **kwargs) -> list[Error]:
    """Checked at every start, in every mode: values that would fail at request time."""
    from vouch.web.proxies import parse_networks

    errors: list[Error] = []
    try:
        parse_networks(tuple(settings.VOUCH_TRUSTED_PROXIES))
    except ValueError as exc:
        errors.append(Error(f"VOUCH_TRUSTED_PROXIES: {exc}", id="vouch.E010"))
    if not settings.VOUCH_REGIONS:
        errors.append(Error("VOUCH_REGIONS must name at least one region.", id="vouch.E011"))
    return errors


@register(deploy=True)
def production_settings(app_configs, **kwargs) -> list[Error]:
    if not getattr(settings, "PRODUCTION", False):
        return []
    errors: list[Error] = []
    if settings.DEBUG:
        errors.append(Error("VOUCH_DEBUG is on in production.", id="vouch.E001"))
    key = settings.SECRET_KEY
    if (
        not settings.SECRET_KEY_FROM_ENV
        or len(key) < 50
        or len(set(key)) < 10
        or any(marker in key.lower() for marker in WEAK_SECRET_MARKERS)
    ):
        errors.append(
            Error(
                "VOUCH_SECRET_KEY must be set in production to a long random value (50+ characters).",
                hint='python3 -c "import secrets; print(secrets.token_urlsafe(64))"',
                id="vouch.E002",
            )
        )
    hosts = [h for h in settings.ALLOWED_HOSTS if h]
    if not hosts or "*" in hosts:
        errors.append(Error("VOUCH_ALLOWED_HOSTS must list the host names Vouch serves (no '*').", id="vouch.E003"))
    if urlsplit(settings.PUBLIC_URL).scheme != "https":
        errors.append(Error("VOUCH_PUBLIC_URL must be an https:// address.", id="vouch.E004"))
    if not settings.SECURE_SSL_REDIRECT or settings.SECURE_HSTS_SECONDS < 63072000:
        errors.append(Error("HTTPS redirect and HSTS must stay on in production.", id="vouch.E005"))
    if not (settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE):
        errors.append(Error("Cookies must be Secure in production.", id="vouch.E006"))
    if not getattr(settings, "SMTP_URL", ""):
        # Without a relay every mail (private links, sign-in codes, unlock links) would stay
        # in the local outbox on this server, and candidates and referees would get nothing.
        errors.append(
            Error(
                "VOUCH_SMTP_URL must be set in production: without it, mail stays in the local outbox "
                "and reaches nobody.",
                hint="smtp://user:password@relay.example.com:587 (STARTTLS) or smtps://...:465 (TLS)",
                id="vouch.E008",
            )
        )
    if not settings.VOUCH_TRUSTED_PROXIES:
        # Serving TLS ourselves: a real certificate must be configured.
        for name in ("VOUCH_TLS_CERT", "VOUCH_TLS_KEY"):
            value = getattr(settings, name, "")
            if not value or not Path(value).is_file():
                errors.append(
                    Error(
                        f"{name} must name a readable file in production (or set VOUCH_TRUSTED_PROXIES "
                        "when a TLS-terminating proxy is in front).",
                        id="vouch.E007",
                    )
                )
    return errors
