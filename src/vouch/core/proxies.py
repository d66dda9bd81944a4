"""Which forwarded headers to believe.

Only a configured trusted proxy (VOUCH_TRUSTED_PROXIES, addresses or networks) may
tell Vouch the original scheme and client address. From anyone else the
X-Forwarded-* headers are removed before Django or Vouch read them, so a client
cannot claim HTTPS or another address by sending a header."""

from __future__ import annotations

import contextlib
import ipaddress
from functools import lru_cache

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")

# Set in the WSGI environ when forwarded headers were dropped: the request still came
# through a proxy, so it is not a local one (the outbox page relies on this).
FORWARDED_SEEN = "vouch.forwarded_seen"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def apply(meta: dict, trusted: tuple[str, ...]) -> None:
    """Strip forwarded headers from untrusted peers; from a trusted proxy, set
    REMOTE_ADDR to the nearest address in X-Forwarded-For that is not a proxy."""
    networks = parse_networks(trusted) if trusted else ()
    peer = meta.get("REMOTE_ADDR", "")
    if not networks or not _is_trusted(peer, networks):
        dropped = [header for header in FORWARDED_HEADERS if meta.pop(header, None) is not None]
        if dropped:
            meta[FORWARDED_SEEN] = True
        return
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            # A malformed hop keeps the proxy's address rather than guessing.
            with contextlib.suppress(ValueError):
                meta["REMOTE_ADDR"] = str(ipaddress.ip_address(hop))
            return
