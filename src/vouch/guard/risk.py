"""The risk engine: how unusual is this successful password check? (P16, docs/security/promises.md#p16)

``gather`` collects what is known about the sign-in (address, place, device, the
account's recent history, failures before it); ``score`` turns that into signals, a
score and a decision, and is a pure function so tests and the benchmark can feed it
directly. ``assess`` does both and ``record`` stores the result as a ``SignIn``.

Decisions, by score: allow; allow and email a "new sign-in" notice; require a step-up
(2FA, or an emailed one-time code for accounts without 2FA); suspend the account.

Only sign-ins that went all the way through (``SignIn.completed_at``) count as the
account's history, so an attacker who got the password but failed the step-up does
not teach the engine that their country is normal, nor make the real user's next
sign-in look like impossible travel."""

from __future__ import annotations

import bisect
import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections, router
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from vouch.core.db import ComposedSQL
from vouch.guard import failures, geo
from vouch.guard.geo import Location
from vouch.guard.models import SignIn

log = logging.getLogger("vouch.guard")

# Signal names (stored in SignIn.signals) and their weights.
NEW_DEVICE = "new_device"
NEW_NETWORK = "new_network"
NEW_COUNTRY = "new_country"
IMPOSSIBLE_TRAVEL = "impossible_travel"
ANONYMISING_NETWORK = "anonymising_network"
RECENT_FAILURES = "recent_failures"
ADDRESS_MANY_ACCOUNTS = "address_many_accounts"

WEIGHTS: dict[str, int] = {
    NEW_DEVICE: 20,
    NEW_NETWORK: 10,
    NEW_COUNTRY: 35,
    IMPOSSIBLE_TRAVEL: 150,
    ANONYMISING_NETWORK: 40,
    RECENT_FAILURES: 40,
    ADDRESS_MANY_ACCOUNTS: 60,
}
# Score thresholds: at or above each, that decision. A new device alone notifies; a
# new country, an anonymiser, a run of failures or a credential-stuffing address asks
# for a step-up; impossible travel suspends on its own. Other signals suspend only
# when nearly all of them come together (a stuffing address, through an anonymiser, in
# a new country, on a new device): someone on a new laptop abroad behind a VPN can
# still prove it is them with a step-up.
NOTIFY_AT = 20
STEP_UP_AT = 40
SUSPEND_AT = 150

FAILURES_THRESHOLD = 5  # failed password checks on the account since its last sign-in
ACCOUNTS_THRESHOLD = 5  # distinct accounts that failed from this address...
# ...within the last hour (vouch.guard.failures.ADDRESS_WINDOW).
HISTORY_WINDOW = timedelta(days=90)
HISTORY_ROWS = 30
DEFAULT_MAX_KMH = 1000


@dataclass(frozen=True)
class Previous:
    """A completed earlier sign-in, as far as the engine needs it."""

    occurred_at: datetime
    location: Location


@dataclass
class Context:
    """Everything ``score`` looks at. Built by ``gather`` (or directly, in tests)."""

    now: datetime
    ip: str | None = None
    location: Location = geo.UNKNOWN
    device_hash: str = ""
    device_known: bool = False
    user_agent_family: str = ""
    has_history: bool = False
    seen_countries: frozenset[str] = frozenset()
    seen_networks: frozenset[str] = frozenset()
    previous: Previous | None = None
    recent_failures: int = 0
    accounts_from_address: int = 0
    anonymising: bool = False
    max_kmh: float = DEFAULT_MAX_KMH


@dataclass
class Assessment:
    score: int
    signals: list[str]
    decision: str
    details: dict = field(default_factory=dict)


def score(ctx: Context) -> Assessment:
    """Signals, score and decision for one sign-in. Pure: no queries, no clock."""
    signals: list[str] = []
    details: dict = {}
    if not ctx.device_known:
        signals.append(NEW_DEVICE)
    # Place signals need a place and a history to compare it with: the first sign-in
    # of an account, or one from a private address, has nothing to be unusual against.
    if ctx.has_history and ctx.location.known:
        if ctx.location.country not in ctx.seen_countries:
            signals.append(NEW_COUNTRY)
        if ctx.location.asn and ctx.location.asn not in ctx.seen_networks:
            signals.append(NEW_NETWORK)
    speed = travel_speed(ctx.previous, ctx.location, ctx.now)
    if speed is not None:
        details["speed_kmh"] = round(speed)
        if speed > ctx.max_kmh:
            signals.append(IMPOSSIBLE_TRAVEL)
    if ctx.anonymising:
        signals.append(ANONYMISING_NETWORK)
    if ctx.recent_failures >= FAILURES_THRESHOLD:
        signals.append(RECENT_FAILURES)
        details["failures"] = ctx.recent_failures
    if ctx.accounts_from_address >= ACCOUNTS_THRESHOLD:
        signals.append(ADDRESS_MANY_ACCOUNTS)
        details["accounts_from_address"] = ctx.accounts_from_address
    total = min(sum(WEIGHTS[s] for s in signals), 1000)
    if total >= SUSPEND_AT:
        decision = SignIn.Decision.SUSPEND
    elif total >= STEP_UP_AT:
        decision = SignIn.Decision.STEP_UP
    elif total >= NOTIFY_AT:
        decision = SignIn.Decision.NOTIFY
    else:
        decision = SignIn.Decision.ALLOW
    return Assessment(score=total, signals=signals, decision=str(decision), details=details)


def travel_speed(previous: Previous | None, here: Location, now: datetime) -> float | None:
    """km/h needed to get from the previous sign-in's place to this one, after taking
    off both places' uncertainty; None when either place is unknown."""
    if previous is None:
        return None
    distance = geo.distance_km(previous.location, here)
    if distance is None:
        return None
    distance = max(0.0, distance - previous.location.accuracy_km - here.accuracy_km)
    if distance == 0:
        return 0.0
    # A floor of one minute: two sign-ins in the same second are not infinitely fast.
    hours = max((now - previous.occurred_at).total_seconds(), 60.0) / 3600
    return distance / hours


# --------------------------------------------------------------- anonymising networks


class NetworkList:
    """Sorted address ranges from a file of CIDRs (one a line, '#' comments), looked up
    by bisection so a list of thousands of Tor exits or VPN ranges costs microseconds."""

    def __init__(self, text: str) -> None:
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                network = ipaddress.ip_network(line, strict=False)
            except ValueError:
                log.warning("guard: ignoring %r in the anonymising networks list", line[:60])
                continue
            ranges[network.version].append((int(network.network_address), int(network.broadcast_address)))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in ranges.items():
            merged: list[tuple[int, int]] = []
            for start, end in sorted(items):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], end))
                else:
                    merged.append((start, end))
            self._starts[version] = [start for start, _ in merged]
            self._ends[version] = [end for _, end in merged]
        self.size = sum(len(v) for v in self._starts.values())

    def __contains__(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        value, starts = int(address), self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[address.version][index]


_lists: dict[str, tuple[float, NetworkList]] = {}
_lists_lock = threading.Lock()


def anonymising_networks() -> NetworkList | None:
    """The configured list (VOUCH_ANONYMISING_NETWORKS), re-read when the file changes
    so an operator's cron job can refresh it without a restart."""
    path = getattr(settings, "VOUCH_ANONYMISING_NETWORKS", "")
    if not path:
        return None
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        log.warning("guard: anonymising networks file %s cannot be read", path)
        return None
    cached = _lists.get(path)
    if cached is None or cached[0] != mtime:
        with _lists_lock:
            cached = (mtime, NetworkList(Path(path).read_text(encoding="utf-8", errors="replace")))
            _lists[path] = cached
    return cached[1]


def is_anonymising(ip: str | None) -> bool:
    networks = anonymising_networks()
    return bool(ip and networks is not None and ip in networks)


# ---------------------------------------------------------------------------- gather


def client_ip(request) -> str | None:
    # REMOTE_ADDR is the client: RequestContextMiddleware applied X-Forwarded-For from
    # trusted proxies only (vouch.core.proxies).
    raw = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


def device_family(request) -> str:
    user_agent = request.META.get("HTTP_USER_AGENT", "") if request is not None else ""
    try:
        from vouch.guard.sessions import describe_device
    except ImportError:  # pragma: no cover - the sessions module ships with guard
        return user_agent[:64] or "Unknown device"
    return describe_device(user_agent)[:64]


def _device(request, user) -> tuple[str, bool]:
    """The signed device cookie's hash and whether this account has used it before
    (vouch.guard.devices); no cookie, no device."""
    try:
        from vouch.guard import devices
    except ImportError:
        return "", False
    try:
        digest = devices.device_hash(request) or ""
        known = bool(digest) and devices.is_known_device(request, user)
    except Exception:  # a broken cookie is an unknown device, never an error
        log.exception("guard: device check failed")
        return "", False
    return digest, known


# The account's recent completed sign-ins, newest first (vouch.core.db.ComposedSQL).
HISTORY = ComposedSQL(
    lambda n: (
        f"SELECT {n.columns(SignIn, 'occurred_at', 'country', 'asn', 'latitude', 'longitude', 'device_hash')} "  # noqa: S608 (names from the model)
        f"FROM {n.table(SignIn)} WHERE {n.column(SignIn, 'user')} = %s "
        f"AND {n.column(SignIn, 'completed_at')} IS NOT NULL AND {n.column(SignIn, 'occurred_at')} >= %s "
        f"ORDER BY {n.column(SignIn, 'occurred_at')} DESC LIMIT {HISTORY_ROWS}"
    )
)


def _history(user_id: int, since: datetime) -> list[tuple]:
    """The account's recent completed sign-ins, newest first, as (occurred_at, country,
    asn, latitude, longitude, device_hash). Plain SQL: this runs on every sign-in, and
    building the ORM query cost more than the query itself (as in vouch.accounts.sessions)."""
    alias = router.db_for_read(SignIn)
    rows = HISTORY.fetchall([user_id, connections[alias].ops.adapt_datetimefield_value(since)], using=alias)
    if rows:
        # SQLite hands back naive UTC (or text); only the newest row's time is used.
        first = rows[0][0] if isinstance(rows[0][0], datetime) else parse_datetime(str(rows[0][0]))
        if first is not None and timezone.is_naive(first):
            first = first.replace(tzinfo=UTC)
        rows[0] = (first, *rows[0][1:])
    return rows


def gather(request, user, *, now: datetime | None = None) -> Context:
    now = now or timezone.now()
    ip = client_ip(request)
    location = geo.locate(ip)
    device_hash, device_known = _device(request, user)
    history = _history(user.pk, now - HISTORY_WINDOW)
    if device_hash and not device_known:
        device_known = any(row[5] == device_hash for row in history)
    previous = None
    if history:
        occurred_at, country, _asn, latitude, longitude, _hash = history[0]
        previous = Previous(
            occurred_at=occurred_at,
            location=Location(
                country=country,
                latitude=latitude,
                longitude=longitude,
                accuracy_km=geo.COUNTRY_ACCURACY_KM if latitude is not None else 0.0,
            ),
        )
    recent_failures, accounts_from_address = failures.counts(user, ip)
    return Context(
        now=now,
        ip=ip,
        location=location,
        device_hash=device_hash,
        device_known=device_known,
        user_agent_family=device_family(request),
        has_history=bool(history),
        seen_countries=frozenset(row[1] for row in history if row[1]),
        seen_networks=frozenset(row[2] for row in history if row[2]),
        previous=previous,
        recent_failures=recent_failures,
        accounts_from_address=accounts_from_address,
        anonymising=is_anonymising(ip),
        max_kmh=float(getattr(settings, "VOUCH_RISK_MAX_KMH", DEFAULT_MAX_KMH)),
    )


def assess(request, user, *, now: datetime | None = None) -> tuple[Context, Assessment]:
    ctx = gather(request, user, now=now)
    return ctx, score(ctx)


def record(user, ctx: Context, assessment: Assessment) -> SignIn:
    location = ctx.location
    return SignIn.objects.create(
        user=user,
        occurred_at=ctx.now,
        ip=ctx.ip,
        country=location.country,
        asn=location.asn,
        latitude=location.latitude,
        longitude=location.longitude,
        device_hash=ctx.device_hash,
        user_agent_family=ctx.user_agent_family,
        score=min(assessment.score, 32767),
        signals=assessment.signals,
        decision=assessment.decision,
    )
