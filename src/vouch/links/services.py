"""Issuing, resolving and withdrawing private links.

A link's token is 256 random bits (``secrets.token_urlsafe(32)``, 43 characters);
only its SHA-256 is stored (``Link.token_hash``). Resolving hashes what was presented
and makes one lookup on the unique hash index, whatever the token: an unknown token, a
wrong purpose, an expired or revoked link and an inactive company all cost the same
one query and all answer None, so neither the answer nor its timing says which."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeGuard

from django.db import router
from django.db.models import F, Q
from django.utils import timezone

from vouch.core.db import PreparedLookup
from vouch.links.models import Link, Purpose
from vouch.tenancy.models import Company, CompanyStatus

TOKEN_BYTES = 32  # 256 bits; issue #5 asks for at least 128
# What issue() makes is 43 characters of base64url; a little slack either side, and
# anything else is refused before it is hashed or looked up.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")


class LinkError(ValueError):
    """A link that cannot be issued as asked (a programming error, not a visitor's)."""


@dataclass(frozen=True)
class ResolvedLink:
    """What a valid link leads to. ``token`` is the raw token, kept only so a page can
    link to its siblings under the same address; it is left out of repr() so it does
    not end up in a log line or a traceback by accident."""

    link_id: int
    company: Company
    purpose: str
    subject_id: uuid.UUID
    expires_at: datetime
    token: str = field(repr=False, compare=False, default="")
    last_used_at: datetime | None = field(repr=False, compare=False, default=None)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def well_formed(raw: object) -> TypeGuard[str]:
    return isinstance(raw, str) and _TOKEN_SHAPE.fullmatch(raw) is not None


def _company_usable(company: Company) -> bool:
    return company.is_active and company.status != CompanyStatus.DELETED


def issue(company: Company, purpose: str, subject_id: uuid.UUID | str, expires_at: datetime) -> str:
    """Make a link for ``subject_id`` (an object in ``company``'s database) and return
    its raw token: the only time it exists outside the visitor's hands. Put it in the
    email at once; it cannot be recovered later, only replaced (see :func:`reissue`)."""
    if purpose not in Purpose.values:
        raise LinkError(f"unknown link purpose {purpose!r}")
    if timezone.is_naive(expires_at):
        raise LinkError("expires_at must be timezone-aware")
    if expires_at <= timezone.now():
        raise LinkError("a link must expire in the future")
    if not _company_usable(company):
        raise LinkError("links cannot be issued for an inactive or deleted company")
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    Link.objects.create(
        token_hash=hash_token(raw),
        company=company,
        purpose=purpose,
        subject_id=uuid.UUID(str(subject_id)),
        expires_at=expires_at,
    )
    return raw


def reissue(company: Company, purpose: str, subject_id: uuid.UUID | str, expires_at: datetime) -> str:
    """A new link for the subject; its earlier links of the same purpose stop working
    (a resent email replaces the old one)."""
    now = timezone.now()
    Link.objects.filter(company=company, subject_id=subject_id, purpose=purpose, revoked_at__isnull=True).update(
        revoked_at=now
    )
    return issue(company, purpose, subject_id, expires_at)


def resolve(raw: object, purpose: str, *, now: datetime | None = None) -> ResolvedLink | None:
    """The link ``raw`` opens for ``purpose``, or None: unknown, malformed, another
    purpose, expired, revoked, or its company inactive or deleted."""
    return check(raw, purpose, now=now)[0]


# What resolving a link reads (every link page does it first, so it is kept small); the
# company's columns are those its pages and ``company_context`` use.
RESOLVE_COLUMNS = (
    "purpose",
    "subject_id",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "company__name",
    "company__region",
    "company__status",
    "company__is_active",
    "company__offline_since",
)

# Compiled once (vouch.core.db): every link page starts with this read.
_link_by_hash = PreparedLookup(
    lambda: Link.objects.select_related("company").only(*RESOLVE_COLUMNS),
    key="token_hash",
    sentinel="(not a token hash)",
)


def check(raw: object, purpose: str, *, now: datetime | None = None) -> tuple[ResolvedLink | None, str, Link | None]:
    """:func:`resolve`, plus why a link was refused and its row when the token is a real
    one: for the security event only, never for the visitor (who sees one neutral page).
    The same one indexed query whatever the outcome."""
    if not well_formed(raw):
        return None, "malformed", None
    link = _link_by_hash.get(hash_token(raw), using=router.db_for_read(Link))
    if link is None:
        return None, "unknown", None
    now = now or timezone.now()
    if link.purpose != purpose:
        return None, "wrong_purpose", link
    if link.revoked_at is not None:
        return None, "revoked", link
    if link.expires_at <= now:
        return None, "expired", link
    if not _company_usable(link.company):
        return None, "company_inactive", link
    resolved = ResolvedLink(
        link.pk, link.company, link.purpose, link.subject_id, link.expires_at, raw, link.last_used_at
    )
    return resolved, "valid", link


# A link's use is written at most once in this long: every page view and every
# autosave would otherwise be a write to the control database, which all companies share.
USE_RECORD_INTERVAL = timedelta(seconds=60)


def record_use(resolved: ResolvedLink, *, now: datetime | None = None) -> bool:
    """When the link was last opened and in how many separate minutes: one UPDATE, no
    read, and none at all when it was recorded less than ``USE_RECORD_INTERVAL`` ago.
    True if it wrote."""
    now = now or timezone.now()
    if resolved.last_used_at is not None and now - resolved.last_used_at < USE_RECORD_INTERVAL:
        return False
    Link.objects.filter(pk=resolved.link_id).update(last_used_at=now, use_count=F("use_count") + 1)
    return True


def revoke(link: Link | ResolvedLink | int) -> bool:
    """Withdraw one link at once. True if it was still in force."""
    link_id = link if isinstance(link, int) else getattr(link, "link_id", None) or link.pk  # type: ignore[union-attr]  # typing debt
    return bool(Link.objects.filter(pk=link_id, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def revoke_for_subject(company: Company, subject_id: uuid.UUID | str, purpose: str | None = None) -> int:
    """Withdraw every link to one object (a cancelled request, a removed referee)."""
    links = Link.objects.filter(company=company, subject_id=subject_id, revoked_at__isnull=True)
    if purpose is not None:
        links = links.filter(purpose=purpose)
    return links.update(revoked_at=timezone.now())


def extend(company: Company, subject_id: uuid.UUID | str, expires_at: datetime) -> int:
    """A request's deadline moved: its links (not revoked ones) expire with it. Moving
    the deadline later makes an already expired link work again, as the request does."""
    if timezone.is_naive(expires_at):
        raise LinkError("expires_at must be timezone-aware")
    return Link.objects.filter(company=company, subject_id=subject_id, revoked_at__isnull=True).update(
        expires_at=expires_at
    )


def purge_expired(older_than: timedelta, *, now: datetime | None = None) -> int:
    """Delete links expired or revoked more than ``older_than`` ago. Returns how many."""
    cutoff = (now or timezone.now()) - older_than
    deleted, _ = Link.objects.filter(Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff)).delete()
    return deleted
