"""Request rate limits (P3, docs/security/limits.md): requests counted per client address,
network (IPv4 /24, IPv6 /64), signed-in account and company, by route class, in fixed
one-minute windows and, for the classes a flood uses, in ten-second windows too (a flood
spread over many addresses must meet a limit while it lasts, not a minute later); past a
limit the request is answered 429 with Retry-After. And what is in progress at once, per
server process (:class:`InFlight`): per address, per account, and for everyone not signed
in together, so a signed-in member always finds a thread.

Why counted this way: the check runs on every request, so it must cost almost nothing.
Each server process counts in its own memory first and adds its count to the shared
counter in the cache (Redis in production, a database cache table of its own on the
embedded default) only every ``batch`` requests of a key (a twentieth of the limit) and
when its estimate reaches the limit. A normal request is then a few dictionary updates;
the cache sees one write per key and batch. The price is a small overshoot: the other
processes' counts not yet added, at most ``(processes - 1) * batch`` requests.

When the cache does not answer, each process goes on counting alone (fail open: these
limits keep the site up, they do not guard a secret; the brute-force throttle of
vouch.guard fails closed)."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches

from vouch.core import metrics
from vouch.core.network import NETWORK_PREFIX
from vouch.core.proxies import parse_networks
from vouch.shield.state import blind

WINDOW = 60  # seconds: limits are per minute
BURST_WINDOW = 10  # seconds: the short windows (BURST_DEFAULTS)
MAX_LOCAL_KEYS = 50_000  # keys one process remembers per window before it starts again
CACHE_ALIAS = "limits"

ROUTE_CLASSES = ("sign_in", "link", "upload", "pdf", "search", "page")
SCOPES = ("address", "network", "account", "company")
UNLIMITED = ("probe", "static")

# Requests a minute, by route class and scope (0: that scope is not limited for that class).
# Generous: a person never comes near them; an office behind one address (NAT) neither.
DEFAULTS: dict[str, dict[str, int]] = {
    "sign_in": {"address": 120, "network": 480, "account": 0, "company": 0},
    # Above the link throttle's own flood handling (vouch.guard.throttle.check_code), which
    # answers guessers more precisely: these only cap the volume.
    "link": {"address": 600, "network": 2400, "account": 0, "company": 0},
    "upload": {"address": 120, "network": 480, "account": 120, "company": 600},
    "pdf": {"address": 120, "network": 480, "account": 60, "company": 300},
    "search": {"address": 300, "network": 1200, "account": 300, "company": 1500},
    "page": {"address": 3000, "network": 12000, "account": 3000, "company": 30000},
}

# Requests in ten seconds, same shape (0: not limited in the short window): for the classes
# anyone may ask for without signing in, so a flood spread over many addresses meets a
# limit while it lasts. Half (sign-in) or a quarter (links) of the minute's: an office of
# 200 behind one /24 signing in over a minute stays well under them
# (tests/shield/test_limits_flood.py).
BURST_DEFAULTS: dict[str, dict[str, int]] = {
    "sign_in": {"address": 60, "network": 240, "account": 0, "company": 0},
    "link": {"address": 150, "network": 600, "account": 0, "company": 0},
    "upload": {"address": 0, "network": 0, "account": 0, "company": 0},
    "pdf": {"address": 0, "network": 0, "account": 0, "company": 0},
    "search": {"address": 0, "network": 0, "account": 0, "company": 0},
    "page": {"address": 0, "network": 0, "account": 0, "company": 0},
}

# The route classes are the request metrics' (one classifier: vouch.core.metrics).
route_class = metrics.route_class


def now() -> float:
    """The limits' clock (tests replace it)."""
    return time.time()


class LimitsError(ValueError):
    pass


@lru_cache(maxsize=8)
def parse(spec: str, setting: str = "VOUCH_RATE_LIMITS") -> dict[str, dict[str, int]] | None:
    """VOUCH_RATE_LIMITS (or VOUCH_BURST_LIMITS, ``setting``): ``off``, or comma-separated
    ``class.scope=N`` overrides of :data:`DEFAULTS` (:data:`BURST_DEFAULTS`) (``*`` for every
    class or scope; 0 turns that limit off). None: off."""
    spec = spec.strip()
    defaults = BURST_DEFAULTS if setting == "VOUCH_BURST_LIMITS" else DEFAULTS
    period = "ten seconds" if setting == "VOUCH_BURST_LIMITS" else "minute"
    table = {name: dict(scopes) for name, scopes in defaults.items()}
    if spec.lower() in ("off", "0", "none"):
        return None
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        route_class, _, scope = name.strip().partition(".")
        if not value.strip().isdigit():
            raise LimitsError(f"{setting}: {item!r} needs a whole number of requests a {period}")
        classes = ROUTE_CLASSES if route_class == "*" else (route_class,)
        scopes = SCOPES if scope == "*" else (scope,)
        if not set(classes) <= set(ROUTE_CLASSES) or not set(scopes) <= set(SCOPES):
            raise LimitsError(
                f"{setting}: {item!r}: use class.scope, class one of {', '.join(ROUTE_CLASSES)}, "
                f"scope one of {', '.join(SCOPES)} (or *)"
            )
        for one_class in classes:
            for one_scope in scopes:
                table[one_class][one_scope] = int(value)
    return table


def table() -> dict[str, dict[str, int]] | None:
    """The limits in force; None when they are off (VOUCH_RATE_LIMITS=off, or the
    benchmark switch VOUCH_BENCH_PROTECTIONS_OFF, never honoured in production)."""
    if getattr(settings, "VOUCH_PROTECTIONS_OFF", False):
        return None
    return parse(getattr(settings, "VOUCH_RATE_LIMITS", ""))


def burst_table() -> dict[str, dict[str, int]] | None:
    """The ten-second limits in force (VOUCH_BURST_LIMITS); None when they are off (with
    the others, or on their own)."""
    if getattr(settings, "VOUCH_PROTECTIONS_OFF", False):
        return None
    return parse(getattr(settings, "VOUCH_BURST_LIMITS", ""), "VOUCH_BURST_LIMITS")


@lru_cache(maxsize=8192)
def address_and_network(remote_addr: str) -> tuple[str, str] | None:
    """The address and its network (IPv4 /24, IPv6 /64; an IPv4-mapped IPv6 address as
    IPv4), cached: parsing is most of a check's cost."""
    try:
        address = ipaddress.ip_address(remote_addr.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    network = ipaddress.ip_network(f"{address}/{NETWORK_PREFIX[address.version]}", strict=False)
    return str(address), str(network)


@lru_cache(maxsize=8192)
def is_exempt(remote_addr: str, exempt: tuple[str, ...]) -> bool:
    """Whether an address is in VOUCH_RATE_LIMIT_EXEMPT (monitoring, a load test)."""
    if not exempt:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.strip())
    except ValueError:
        return False
    return any(address in network for network in parse_networks(exempt))


@dataclass(frozen=True)
class Refusal:
    route_class: str
    scope: str
    limit: int
    retry_after: int
    period: int = WINDOW  # seconds the limit counts over (0: a cap on requests in progress)


class Counter:
    """Fixed-window counts per key, kept in this process and added to the shared cache
    in batches (see the module)."""

    def __init__(self, period: int = WINDOW, prefix: str = "lim") -> None:
        self.period = period
        self.prefix = prefix
        self.window = -1
        # key -> [counted here and not yet added, the shared total when last added]
        self.local: dict[str, list[int]] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.window = -1
            self.local = {}

    def hit(self, key: str, limit: int, window: int) -> bool:
        """Count one request of ``key`` in ``window``; False when it is over ``limit``
        (a refused request is not counted)."""
        if window != self.window or len(self.local) > MAX_LOCAL_KEYS:
            with self.lock:
                if window != self.window or len(self.local) > MAX_LOCAL_KEYS:
                    self.window, self.local = window, {}
        entry = self.local.get(key)
        if entry is None:
            entry = self.local.setdefault(key, [0, 0])
        if entry[0] + entry[1] >= limit:
            return False
        entry[0] += 1
        if entry[0] >= max(1, limit // 20) or entry[0] + entry[1] >= limit:
            self._add(key, entry, window)
        return entry[0] + entry[1] <= limit

    def _add(self, key: str, entry: list[int], window: int) -> None:
        pending, entry[0] = entry[0], 0
        shared_key = f"{self.prefix}:{window}:{blind(key)}"  # no address in the clear at rest
        cache = caches[CACHE_ALIAS]
        try:
            try:
                total = cache.incr(shared_key, pending)
            except ValueError:  # the first batch of this key and window
                if cache.add(shared_key, pending, timeout=2 * self.period):
                    total = pending
                else:
                    total = cache.incr(shared_key, pending)
        except Exception:  # noqa: BLE001  (the cache is out: count on here alone, fail open)
            entry[0] += pending
            return
        entry[1] = max(entry[1] + pending, int(total))


counter = Counter()
burst_counter = Counter(BURST_WINDOW, "limb")


def reset() -> None:
    """Forget this process's counts (tests; the shared counters are the cache's)."""
    counter.reset()
    burst_counter.reset()


def retry_after(moment: float, period: int = WINDOW) -> int:
    return max(1, math.ceil((int(moment // period) + 1) * period - moment))


def check(route: str, scopes: dict[str, str]) -> Refusal | None:
    """Count a request against ``route``'s limits in each scope of ``scopes``
    (scope -> the address, network, account or company it counts for), the minute's and
    the ten seconds'; the first limit it goes over, or None."""
    limits = table()
    if limits is None:
        return None
    per_class = limits.get(route)
    if not per_class:
        return None
    bursts = burst_table()
    per_burst = bursts.get(route) if bursts is not None else None
    moment = now()
    window = int(moment // WINDOW)
    burst_window = int(moment // BURST_WINDOW)
    for scope, subject in scopes.items():
        key = f"{route}:{scope}:{subject}"
        # The ten seconds first: a request they refuse is not counted in the minute (a
        # refusal adds nothing to any counter, so it never writes to the cache).
        limit = per_burst[scope] if per_burst else 0
        if limit and not burst_counter.hit(key, limit, burst_window):
            return Refusal(route, scope, limit, retry_after(moment, BURST_WINDOW), BURST_WINDOW)
        limit = per_class[scope]
        if limit and not counter.hit(key, limit, window):
            return Refusal(route, scope, limit, retry_after(moment))
    return None


class InFlight:
    """Requests in progress in this process, per key (an address, an account, everyone
    not signed in): :meth:`take` a place before the work, :meth:`give_back` it after."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}
        self.lock = threading.Lock()

    def take(self, key: str, cap: int) -> bool:
        with self.lock:
            held = self.held.get(key, 0)
            if held >= cap:
                return False
            self.held[key] = held + 1
            return True

    def give_back(self, key: str) -> None:
        with self.lock:
            left = self.held.get(key, 1) - 1
            if left > 0:
                self.held[key] = left
            else:
                self.held.pop(key, None)
