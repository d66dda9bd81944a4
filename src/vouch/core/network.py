"""The client's address and network, for counting requests by where they come from (the
sign-in and link throttles in vouch.guard.throttle, the sampled security events in
vouch.audit.sampling).

REMOTE_ADDR is the client: vouch.core.proxies applied X-Forwarded-For from trusted proxies
only, before any view ran."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

NETWORK_PREFIX = {4: 24, 6: 64}


def client_ip(request: HttpRequest) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((request.META.get("REMOTE_ADDR") or "").strip())
    except ValueError:
        return None


def client_network(request: HttpRequest) -> str | None:
    """The client's network (IPv4 /24, IPv6 /64) as ``address/prefix``; None when the
    address is unknown. An IPv4 address seen through an IPv6 socket (``::ffff:a.b.c.d``)
    counts as IPv4: as one /64, every such client would share one network."""
    return network_of(client_ip(request))


def network_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str | None:
    if address is None:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    network = ipaddress.ip_network(f"{address}/{NETWORK_PREFIX[address.version]}", strict=False)
    return str(network)
