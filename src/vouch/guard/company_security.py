"""A company's security settings (P19, docs/security/promises.md#p19): what owners set, and the rules read from them.

Owners set: two-factor required for every member (with a grace period), idle and
absolute session timeouts (only ever shorter than the installation's), the networks
members may use, and a minimum password length above the installation's.

Enforcement lives where the request is: session limits in
``vouch.guard.session_lifetime.SessionLifetimeMiddleware`` (through ``session_limits``),
networks and the 2FA deadline in ``vouch.guard.enforcement``, password length in
``vouch.guard.validators``. Everything here is plain functions the tests call directly.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from vouch.accounts import policy
from vouch.accounts.models import Membership
from vouch.accounts.policy import Action
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core.db import ComposedSQL
from vouch.guard.models import CompanySecuritySettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Bounds on what an owner may enter: wide enough for any sensible policy, narrow enough
# that a typo cannot make sessions last a minute or passwords impossible to choose.
MIN_IDLE_MINUTES = 5
MIN_ABSOLUTE_HOURS = 1
MAX_GRACE_DAYS = 90
MAX_PASSWORD_LENGTH = 64
MAX_NETWORKS = 50


class SecuritySettingsError(ValueError):
    """A settings change that would be refused (the message says why, for the owner)."""


@dataclass(frozen=True)
class Snapshot:
    """What a request needs of its company's settings, read in one query."""

    require_2fa: bool = False
    require_2fa_since: datetime | None = None
    grace_days: int = 7
    allowed_networks: tuple[Network, ...] = ()


def for_company(company) -> CompanySecuritySettings:
    """The company's settings row (created with the defaults on first need)."""
    row, _ = CompanySecuritySettings.objects.get_or_create(company=company)
    return row


# A company's settings for the per-request checks (vouch.core.db.ComposedSQL).
_SNAPSHOT_FIELDS = ("require_2fa", "require_2fa_since", "require_2fa_grace_days", "allowed_networks")
SNAPSHOT = ComposedSQL(
    lambda n: (
        f"SELECT {n.columns(CompanySecuritySettings, *_SNAPSHOT_FIELDS)} FROM {n.table(CompanySecuritySettings)} "  # noqa: S608 (names from the model)
        f"WHERE {n.column(CompanySecuritySettings, 'company')} = %s"
    )
)


# Per-process cache of snapshots: every company page needs one, and the dashboard's
# query budget has no room for it. A save in this process (or any ORM save of the row)
# forgets the entry at once; other worker processes see a change within SNAPSHOT_TTL.
SNAPSHOT_TTL = 5.0
_snapshots: dict[str, tuple[float, Snapshot]] = {}


def snapshot(company_id) -> Snapshot:
    """The settings the per-request checks need, at most SNAPSHOT_TTL seconds old."""
    key = str(company_id)
    now = time.monotonic()
    cached = _snapshots.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    snap = _read_snapshot(company_id)
    if len(_snapshots) > 10_000:  # bounded: one entry per active company
        _snapshots.clear()
    _snapshots[key] = (now + SNAPSHOT_TTL, snap)
    return snap


def forget(company_id) -> None:
    _snapshots.pop(str(company_id), None)


def on_settings_saved(sender, instance, **kwargs) -> None:
    forget(instance.company_id)


def _read_snapshot(company_id) -> Snapshot:
    """Hand-written SQL: the ORM's query building costs several times the query itself."""
    db = router.db_for_read(CompanySecuritySettings)
    connection = connections[db]
    key = company_id.hex if connection.vendor == "sqlite" else company_id
    row = SNAPSHOT.fetchone([key], using=db)
    if row is None:
        return Snapshot()
    require, since, grace, networks = row
    if since is not None and isinstance(since, str):  # SQLite hands back text
        since = datetime.fromisoformat(since)
    if since is not None and timezone.is_naive(since):
        since = timezone.make_aware(since, UTC)
    return Snapshot(bool(require), since, int(grace), parse_networks_cached(networks or ""))


# ---------------------------------------------------------------------------- networks


def parse_networks(text: str) -> list[Network]:
    """One CIDR (or single address) per line; blank lines and ``#`` comments ignored.

    Raises SecuritySettingsError naming the first line that is not a network."""
    networks: list[Network] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            network = ipaddress.ip_network(line, strict=False)
        except ValueError:
            raise SecuritySettingsError(f"Line {number} ({line[:60]!r}) is not an IP address or network.") from None
        if network.prefixlen == 0:
            raise SecuritySettingsError(f"Line {number} ({line}) allows every address: leave the list empty instead.")
        networks.append(network)
    if len(networks) > MAX_NETWORKS:
        raise SecuritySettingsError(f"At most {MAX_NETWORKS} networks.")
    return networks


@functools.lru_cache(maxsize=256)
def parse_networks_cached(text: str) -> tuple[Network, ...]:
    try:
        return tuple(parse_networks(text))
    except SecuritySettingsError:
        # Saved rows are validated; a hand-edited bad row fails closed to "nowhere"
        # rather than open to "anywhere".
        return (ipaddress.ip_network("0.0.0.0/32"),)


def address_allowed(address: str, networks: tuple[Network, ...] | list[Network]) -> bool:
    """Whether ``address`` (the client address as ``vouch.core.proxies`` resolved it) is
    inside one of ``networks``. No networks: allowed. An unparsable address: refused."""
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in networks)


def normalise_networks(networks: list[Network]) -> str:
    return "\n".join(str(network) for network in networks)


# ------------------------------------------------------------------------ two-factor


def two_factor_deadline(snap: Snapshot, membership: Membership | None = None) -> datetime | None:
    """When a member of a company that requires 2FA must have it: the requirement's
    start (or the member's joining, if later) plus the grace days. None if not required."""
    if not snap.require_2fa:
        return None
    start = snap.require_2fa_since or timezone.now()
    joined = getattr(membership, "created_at", None) if membership is not None and membership.pk else None
    if joined is not None and joined > start:
        start = joined
    return start + timedelta(days=snap.grace_days)


def companies_requiring_2fa(user, *, roles: tuple[int, ...] | None = None) -> list:
    """Active memberships of ``user`` in companies that require 2FA (optionally only
    in the given roles)."""
    memberships = Membership.objects.filter(
        user=user, is_active=True, company__is_active=True, company__security__require_2fa=True
    ).select_related("company")
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return list(memberships)


# -------------------------------------------------------------------------- sessions


def session_limits(user) -> tuple[int, int]:
    """(idle seconds, absolute seconds) for ``user``'s sessions: the installation's
    limits, shortened by the strictest of the user's companies. Never longer."""
    idle, absolute = settings.SESSION_IDLE_SECONDS, settings.SESSION_MAX_SECONDS
    rows = CompanySecuritySettings.objects.filter(
        company__memberships__user=user,
        company__memberships__is_active=True,
        company__is_active=True,
    ).values_list("idle_timeout_minutes", "absolute_timeout_hours")
    for idle_minutes, absolute_hours in rows:
        if idle_minutes:
            idle = min(idle, idle_minutes * 60)
        if absolute_hours:
            absolute = min(absolute, absolute_hours * 3600)
    return idle, absolute


# ------------------------------------------------------------------ password length


def min_password_length(user) -> int | None:
    """The longest minimum set by any company ``user`` is an active member of."""
    if user is None or getattr(user, "pk", None) is None:
        return None
    lengths = CompanySecuritySettings.objects.filter(
        company__memberships__user=user,
        company__memberships__is_active=True,
        company__is_active=True,
        min_password_length__isnull=False,
    ).values_list("min_password_length", flat=True)
    return max(lengths, default=None)  # type: ignore[type-var]  # typing debt: an Optional not narrowed here


def installation_min_password_length() -> int:
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith("MinimumLengthValidator"):  # type: ignore[index]  # typing debt
            return int(validator.get("OPTIONS", {}).get("min_length", 8))  # type: ignore[attr-defined]  # typing debt
    return 8


# ----------------------------------------------------------------------------- saving


@dataclass
class Changes:
    require_2fa: bool
    require_2fa_grace_days: int
    idle_timeout_minutes: int | None
    absolute_timeout_hours: int | None
    allowed_networks: str
    min_password_length: int | None


def save(company, membership: Membership, changes: Changes, *, request=None) -> CompanySecuritySettings:
    """Apply an owner's changes, after checking them; records a security event.

    Raises PermissionDenied unless ``membership`` may manage security, and
    SecuritySettingsError if the change would lock the saving owner out (their
    current address outside the new networks) or is out of bounds."""
    policy.require(policy.can(membership, Action.MANAGE_SECURITY) and membership.company_id == company.pk)
    networks = parse_networks(changes.allowed_networks)
    if networks and request is not None and not address_allowed(request.META.get("REMOTE_ADDR", ""), networks):
        raise SecuritySettingsError(
            f"Your current address ({request.META.get('REMOTE_ADDR', 'unknown')}) is not inside these networks: "
            "saving them would lock you out. Add your own network first."
        )
    if changes.idle_timeout_minutes is not None and changes.idle_timeout_minutes < MIN_IDLE_MINUTES:
        raise SecuritySettingsError(f"The idle timeout must be at least {MIN_IDLE_MINUTES} minutes.")
    if changes.absolute_timeout_hours is not None and changes.absolute_timeout_hours < MIN_ABSOLUTE_HOURS:
        raise SecuritySettingsError(f"The absolute timeout must be at least {MIN_ABSOLUTE_HOURS} hour.")
    if not 0 <= changes.require_2fa_grace_days <= MAX_GRACE_DAYS:
        raise SecuritySettingsError(f"The grace period must be between 0 and {MAX_GRACE_DAYS} days.")
    if changes.min_password_length is not None and not (
        installation_min_password_length() < changes.min_password_length <= MAX_PASSWORD_LENGTH
    ):
        raise SecuritySettingsError(
            f"The minimum password length must be above {installation_min_password_length()} "
            f"and at most {MAX_PASSWORD_LENGTH}, or empty."
        )
    with transaction.atomic():
        row, _ = CompanySecuritySettings.objects.select_for_update().get_or_create(company=company)
        before = _describe(row)
        if changes.require_2fa and not row.require_2fa:
            row.require_2fa_since = timezone.now()  # the grace period starts now
        elif not changes.require_2fa:
            row.require_2fa_since = None
        row.require_2fa = changes.require_2fa
        row.require_2fa_grace_days = changes.require_2fa_grace_days
        row.idle_timeout_minutes = changes.idle_timeout_minutes
        row.absolute_timeout_hours = changes.absolute_timeout_hours
        row.allowed_networks = normalise_networks(networks)
        row.min_password_length = changes.min_password_length
        row.save()
        after = _describe(row)
        changed = {name: after[name] for name in after if after[name] != before[name]}
        if changed:
            record(
                EventAction.COMPANY_SECURITY_CHANGED,
                request=request,
                actor=membership.user,
                company=company,
                target=f"company:{company.pk}",
                details=changed,
            )
    return row


def _describe(row: CompanySecuritySettings) -> dict:
    return {
        "require_2fa": row.require_2fa,
        "grace_days": row.require_2fa_grace_days,
        "idle_minutes": row.idle_timeout_minutes,
        "absolute_hours": row.absolute_timeout_hours,
        # The list itself can be long; the event says how many and the page shows them.
        "networks": len([line for line in row.allowed_networks.splitlines() if line.strip()]),
        "min_length": row.min_password_length,
    }


def company_min_password_length(company) -> int | None:
    """One company's own minimum (for signing up through its invitation)."""
    return CompanySecuritySettings.objects.filter(company=company).values_list("min_password_length", flat=True).first()
