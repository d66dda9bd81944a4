"""Where an address is, roughly: country, network (ASN) and coordinates.

The default backend is geoip2fast, whose country and ASN data for IPv4 and IPv6 ship
inside the package (offline, no account, no download at run time). geoip2fast gives no
coordinates, so a location's latitude and longitude are the centre of its country, from
the table in ``data/country_centroids.tsv`` (source and licence in its header). That
is coarse: ``accuracy_km`` says how far off it may be, and the risk engine subtracts
it before calling a journey impossible, so only far jumps (Germany to Australia) count.

Another backend can be configured with ``VOUCH_GEOIP_BACKEND`` (a dotted path to a class
with ``lookup(ip) -> Location``). A MaxMind GeoIP2/GeoLite2 City file adapter, with
city-level coordinates, belongs behind that same interface; it is not built yet because
the ``geoip2`` reader package is not in the lock.

Private, loopback, link-local and other non-global addresses have no place: they give
``UNKNOWN``, which no risk signal fires on."""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger("vouch.guard")

CENTROIDS_FILE = Path(__file__).with_name("data") / "country_centroids.tsv"
# How far a country centre may be from where someone really is. Most countries fit in
# this radius; the few larger ones (Russia, Canada, the US...) are why impossible travel
# only fires on long jumps.
COUNTRY_ACCURACY_KM = 1000.0
EARTH_RADIUS_KM = 6371.0
ASN_MAX = 32  # SignIn.asn


@dataclass(frozen=True)
class Location:
    country: str = ""  # ISO 3166-1 alpha-2, "" when unknown
    country_name: str = ""
    asn: str = ""  # the network's operator, as the database names it
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: float = 0.0

    @property
    def known(self) -> bool:
        return bool(self.country)

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def describe(self) -> str:
        """For people: "Germany (Strato AG)", or "an unknown place"."""
        if not self.known:
            return "an unknown place"
        name = self.country_name or self.country
        return f"{name} ({self.asn})" if self.asn else name


UNKNOWN = Location()


class Backend(Protocol):
    def lookup(self, ip: str) -> Location: ...


@cache
def centroids() -> dict[str, tuple[float, float, str]]:
    """ISO code -> (latitude, longitude, name), from the committed table."""
    table: dict[str, tuple[float, float, str]] = {}
    for line in CENTROIDS_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, latitude, longitude, name = line.split("\t")
        table[code] = (float(latitude), float(longitude), name)
    return table


class GeoIP2FastBackend:
    """Country and ASN from geoip2fast's bundled IPv4+IPv6 data; coordinates from the
    country table. Loading takes about half a second and ~100 MB, once per process, on
    the first lookup."""

    DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"

    def __init__(self) -> None:
        self._reader = None
        self._lock = threading.Lock()

    def _load(self):
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    from geoip2fast import GeoIP2Fast

                    self._reader = GeoIP2Fast(geoip2fast_data_file=self.DATA_FILE)
        return self._reader

    def lookup(self, ip: str) -> Location:
        result = self._load().lookup(ip)
        code = (result.country_code or "").upper()
        # geoip2fast answers "--" (and a description) for reserved and unknown ranges.
        if len(code) != 2 or not code.isalpha() or getattr(result, "is_private", False):
            return UNKNOWN
        latitude, longitude, name = centroids().get(code, (None, None, result.country_name or code))
        return Location(
            country=code,
            country_name=name,
            asn=(result.asn_name or "")[:ASN_MAX],
            latitude=latitude,
            longitude=longitude,
            accuracy_km=COUNTRY_ACCURACY_KM if latitude is not None else 0.0,
        )


_backend: Backend | None = None
_backend_lock = threading.Lock()


def backend() -> Backend:
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                path = getattr(settings, "VOUCH_GEOIP_BACKEND", "") or "vouch.guard.geo.GeoIP2FastBackend"
                _backend = import_string(path)()
    return _backend


def set_backend(new: Backend | None) -> None:
    """Replace the backend (tests; an operator's adapter); None: the configured one."""
    global _backend
    _backend = new
    _locate.cache_clear()


def _public(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(str(ip).strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


@lru_cache(maxsize=4096)
def _locate(ip: str) -> Location:
    try:
        return backend().lookup(ip)
    except Exception:  # a broken database must not stop anyone signing in
        log.exception("geo: lookup failed")
        return UNKNOWN


def locate(ip: str | None) -> Location:
    """Where ``ip`` is; ``UNKNOWN`` for private, loopback, malformed or unknown addresses."""
    public = _public(ip)
    return _locate(public) if public else UNKNOWN


def country_name(ip: str | None) -> str:
    """The country's name, or "" (used by the sessions page)."""
    location = locate(ip)
    return location.country_name if location.known else ""


def distance_km(a: Location, b: Location) -> float | None:
    """Great-circle distance between two located points (haversine), or None."""
    if not (a.has_coordinates and b.has_coordinates):
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
