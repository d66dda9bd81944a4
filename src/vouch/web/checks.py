"""Production start-up checks: Vouch refuses to run insecurely (``vouch check --deploy``
and ``vouch serve`` run them; in production mode an error stops the start)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.core.checks import Error, register

from vouch.config import parse_database_url
from vouch.core.proxies import parse_networks

WEAK_SECRET_MARKERS = ("insecure", "change", "secret", "default", "example")
# libpq modes that encrypt and check the server's certificate; "require" encrypts but
# accepts any certificate, so a machine in the middle can still read everything.
VERIFIED_SSLMODES = {"verify-full", "verify-ca"}


def is_local_host(host: str) -> bool:
    """Whether a connection to ``host`` stays on this machine: a Unix socket (a path, or
    no host at all, which libpq and redis-py take as the default socket) or loopback."""
    host = unquote(host or "").strip("[]")
    if not host or host.startswith(("/", "@")):
        return True
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def database_is_protected(host: str, options: dict) -> bool:
    """A PostgreSQL connection verifies its server's certificate, or never leaves the machine."""
    if options.get("sslmode") in VERIFIED_SSLMODES:
        return True
    # libpq connects to hostaddr when given (host then only names the certificate), to
    # the query string's host= when the URL has none, and to each of a list of hosts.
    target = options.get("hostaddr") or host or options.get("host", "")
    return all(is_local_host(part) for part in target.split(","))


def redis_is_protected(url: str) -> bool:
    """rediss:// (redis-py then checks the certificate and host name unless the URL turns
    that off), a Unix socket, or loopback."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return True
    if parts.scheme == "rediss":
        query = {key.lower(): value.lower() for key, value in parse_qsl(parts.query)}
        return query.get("ssl_cert_reqs", "required") == "required" and query.get("ssl_check_hostname", "true") not in {
            "false",
            "0",
            "no",
            "off",
        }
    return is_local_host(parts.hostname or "")


def _database_urls() -> list[tuple[str, str, dict]]:
    """(variable, host, options) of every PostgreSQL connection Vouch opens."""

    found = []
    control = getattr(settings, "VOUCH_DATABASE_URL", "")
    if control and parse_database_url(control).engine == "postgresql":
        parsed = parse_database_url(control)
        found.append(("VOUCH_DATABASE_URL", parsed.host, parsed.options))
    for name in settings.VOUCH_REGIONS:
        entry = settings.VOUCH_REGION_CONFIG.get(name) or {}
        url = entry.get("database_url")
        if not url:
            continue
        parsed = parse_database_url(url)
        if parsed.engine == "postgresql":
            variable = entry.get("database_url_variable") or f"VOUCH_REGION_{name.upper()}_DATABASE_URL"
            found.append((variable, parsed.host, parsed.options))
    return found


def transport_errors() -> list[Error]:
    """Database and Redis connections that would cross a network without verified TLS."""
    errors: list[Error] = []
    named: set[str] = set()
    for variable, host, options in _database_urls():
        if variable in named or database_is_protected(host, options):
            continue
        named.add(variable)
        errors.append(
            Error(
                f"{variable} must use TLS with a verified server certificate in production: add "
                "sslmode=verify-full (or verify-ca) to it, or connect over a Unix socket or loopback.",
                hint="postgres://vouch@db.example.com:5432/vouch?sslmode=verify-full&sslrootcert=/etc/vouch/db-ca.pem",
                id="vouch.E019",
            )
        )
    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url and not redis_is_protected(redis_url):
        errors.append(
            Error(
                "VOUCH_REDIS_URL must use TLS in production: a rediss:// address (or a Unix socket or loopback).",
                hint="rediss://:password@redis.example.com:6380/0",
                id="vouch.E019",
            )
        )
    return errors


@register()
def configuration(app_configs, **kwargs) -> list[Error]:
    """Checked at every start, in every mode: values that would fail at request time."""

    errors: list[Error] = []
    try:
        parse_networks(tuple(settings.VOUCH_TRUSTED_PROXIES))
    except ValueError as exc:
        errors.append(Error(f"VOUCH_TRUSTED_PROXIES: {exc}", id="vouch.E010"))
    if not settings.VOUCH_REGIONS:
        errors.append(Error("VOUCH_REGIONS must name at least one region.", id="vouch.E011"))
    try:
        parse_networks(tuple(settings.VOUCH_SHIELD_ALLOW))
    except ValueError as exc:
        errors.append(Error(f"VOUCH_SHIELD_ALLOW: {exc}", id="vouch.E030"))
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
    errors.extend(transport_errors())
    token = settings.VOUCH_METRICS_TOKEN
    if token and (len(token) < 32 or len(set(token)) < 10):
        # The token is all that keeps /metrics from the public: too short is guessable.
        errors.append(
            Error(
                "VOUCH_METRICS_TOKEN must be a long random value (32+ characters) in production.",
                hint='python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
                id="vouch.E031",
            )
        )
    if getattr(settings, "VOUCH_WEBHOOKS_ALLOW_NETWORKS", None):
        # A test's switch: it lets webhooks reach private and loopback addresses, which is
        # what the guard against server-side request forgery exists to refuse.
        errors.append(
            Error(
                "VOUCH_WEBHOOKS_ALLOW_NETWORKS is for tests only: it lets webhooks reach internal addresses.",
                id="vouch.E040",
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
