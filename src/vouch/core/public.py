"""The installation's public address (``VOUCH_PUBLIC_URL``): every link Vouch emails
is built on it, never on the Host header of the request that caused the email. A
request may arrive under any of ``VOUCH_ALLOWED_HOSTS`` (an internal name, an IP
address, a proxy's), and a link in an email must work for, and only point to, the
address people use."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


def public_url(path: str) -> str:
    """``path`` (from ``reverse``) on the public address."""
    return f"{settings.PUBLIC_URL}{path}"


def rebase(url: str) -> str:
    """An absolute ``url`` with its scheme and host replaced by the public address's
    (path, query and fragment kept)."""
    parts = urlsplit(url)
    public = urlsplit(settings.PUBLIC_URL)
    return urlunsplit((public.scheme, public.netloc, public.path.rstrip("/") + parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class PublicSite:
    """What allauth's mail templates read as ``current_site`` (its default is the
    request's Host header)."""

    name: str
    domain: str


def public_site() -> PublicSite:
    return PublicSite(name="Vouch", domain=urlsplit(settings.PUBLIC_URL).netloc)
