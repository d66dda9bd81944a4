"""Sending a webhook without server-side request forgery.

A company names the address; Vouch connects to it from inside the operator's network.
So the address is checked where it matters, on the IP actually connected to:

- https only, no user name or password in the URL, a host name or a plain IP address
  (numeric hosts in other spellings, ``2130706433`` or ``0177.0.0.1``, are refused: the
  resolver would read them as 127.0.0.1);
- the name is resolved here, every address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, unspecified, CGNAT 100.64/10, unique-local,
  cloud metadata, nor an IPv6 form that embeds one of those), and the connection goes to
  the vetted address itself, with the name sent for TLS (SNI, certificate check) and in
  ``Host``: a second resolution that answers 127.0.0.1 (DNS rebinding) is never made;
- the connected socket's peer is checked again before anything is sent;
- no redirect is followed (a 3xx is a failure), timeouts are short, and at most
  ``BODY_CAP`` bytes of the answer are read, within ``TOTAL_SECONDS``.

A sender keeps a connection open for ``IDLE_SECONDS`` after a 2xx answer it read to the
end, for the next delivery to the same (name, port, vetted address, trust store): a burst
of events then costs one TLS handshake, not one each. The guard is not loosened by it:
the name is resolved and vetted again for every delivery, and a kept connection is used
only when its address is among the addresses just vetted (a changed resolution opens a
new one, to the new address); its peer is checked again before it is used; a 3xx or any
other non-2xx answer, an answer not read to the end, or a receiver asking to close ends
the connection. A kept connection the receiver has meanwhile closed is replaced by a new
one and the delivery sent on it (never lost; a receiver dedupes by ``webhook-id``).

``VOUCH_WEBHOOKS_ALLOW_NETWORKS`` (tests only; refused in production) lets a local
receiver's network through."""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
# Headers and body together: a receiver that drips its answer is cut off.
TOTAL_SECONDS = 15.0
BODY_CAP = 64 * 1024
MAX_URL = 2000
# How long a sender may reuse a connection to a receiver after a delivery, and to how many
# receivers at most: a burst of events reuses it. One gone stale is closed at the sender's
# next delivery, so an idle worker holds at most MAX_KEPT sockets.
IDLE_SECONDS = 5.0
MAX_KEPT = 32

# Refused whatever the ipaddress module thinks of them (several are not "global" anyway:
# listed so the rule does not depend on a Python version's tables).
BLOCKED = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, and the cloud metadata address 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",  # unique-local, and AWS's metadata address fd00:ec2::254
        "fe80::/10",
        "ff00::/8",
    )
)
# A host made only of digits, dots and hex markers that is not a plain dotted quad.
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*\.?$", re.IGNORECASE)


class Refused(ValueError):
    """The address may not be called; the message is safe to show the company."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str


@dataclass
class Response:
    status: int
    retry_after: str
    duration_ms: int


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(value, strict=False) for value in settings.VOUCH_WEBHOOKS_ALLOW_NETWORKS]


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether Vouch may connect to ``address`` (the allowed test networks aside)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded(address)
        if inner is not None and not is_public(inner):
            return False
    if any(address in network for network in BLOCKED if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def vet_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if any(address in network for network in _allowed_networks() if network.version == address.version):
        return
    if not is_public(address):
        raise Refused("The address resolves to a private or reserved network.")


def parse(url: str) -> Target:
    """Check the URL's form (not yet its addresses)."""
    if len(url) > MAX_URL:
        raise Refused("The URL is too long.")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise Refused("The URL is not valid.") from None
    if parts.scheme != "https":
        raise Refused("Webhook URLs must start with https://.")
    if parts.username is not None or parts.password is not None:
        raise Refused("Webhook URLs may not carry a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host or any(ord(char) <= 32 or ord(char) > 126 for char in host):
        raise Refused("The URL needs a host name.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        if NUMERIC_HOST.match(host):
            raise Refused("Write an IP address as four decimal numbers, or use a host name.") from None
    if literal is not None:
        vet_address(literal)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(host=host, port=port, path=path)


def resolve(target: Target) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address of the host, each vetted: one bad address refuses the name."""
    try:
        answers = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise Refused("The host name does not resolve.") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        vet_address(address)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused("The host name does not resolve.")
    return addresses


def check(url: str) -> None:
    """Refuse a URL Vouch may not call (form and resolved addresses)."""
    resolve(parse(url))


def _context() -> ssl.SSLContext:
    return _context_for(settings.VOUCH_WEBHOOKS_CA_FILE or None)


@lru_cache(maxsize=4)
def _context_for(cafile: str | None) -> ssl.SSLContext:
    # Loading the trust store takes milliseconds: once per process, not per delivery.
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection to one vetted address, speaking TLS and HTTP for the name."""

    def __init__(self, target: Target, address, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=CONNECT_SECONDS, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        # A socket of the address's own family connected to the address itself: no
        # second lookup of any kind (socket.create_connection would resolve again).
        family = socket.AF_INET6 if self._address.version == 6 else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
        try:
            raw.settimeout(CONNECT_SECONDS)
            # A kept connection's next request would otherwise wait for the receiver's
            # delayed ACK (Nagle's algorithm): about 40 ms a delivery.
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.connect((str(self._address), self.port))
            # The peer really is the vetted address (nothing between resolution and connect).
            peer = ipaddress.ip_address(raw.getpeername()[0].split("%")[0])
            if peer != self._address:
                raise Refused("The connection reached another address.")
            vet_address(peer)
            raw.settimeout(READ_SECONDS)
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


# --- connections kept for the next delivery -------------------------------------------

_Key = tuple[str, int, str, str | None]
_kept: dict[_Key, tuple[_PinnedConnection, float, int]] = {}
_kept_lock = threading.Lock()


def _key(target: Target, address) -> _Key:
    return (target.host, target.port, str(address), settings.VOUCH_WEBHOOKS_CA_FILE or None)


def _take(key: _Key, address) -> _PinnedConnection | None:
    """A kept connection to exactly this vetted address (taken out: one user at a time)."""
    with _kept_lock:
        kept = _kept.pop(key, None)
    if kept is None:
        return None
    connection, idle_since, pid = kept
    # Another process's socket (after a fork) or one idle too long is never used.
    if pid != os.getpid() or time.monotonic() - idle_since > IDLE_SECONDS or connection.sock is None:
        if pid == os.getpid():
            connection.close()
        return None
    try:
        peer = ipaddress.ip_address(connection.sock.getpeername()[0].split("%")[0])
    except OSError:
        peer = None
    if peer != address:
        connection.close()
        return None
    return connection


def _keep(key: _Key, connection: _PinnedConnection) -> None:
    now = time.monotonic()
    with _kept_lock:
        for stale in [k for k, (_c, idle, _p) in _kept.items() if now - idle > IDLE_SECONDS]:
            _kept.pop(stale)[0].close()
        if len(_kept) >= MAX_KEPT or key in _kept:
            connection.close()
            return
        _kept[key] = (connection, now, os.getpid())


def close_kept() -> None:
    """Close every kept connection (tests; a worker shutting down)."""
    with _kept_lock:
        kept = list(_kept.values())
        _kept.clear()
    for connection, _idle, pid in kept:
        if pid == os.getpid():
            connection.close()


# A kept connection the receiver closed while it was idle fails so on first use.
_STALE = (http.client.RemoteDisconnected, ConnectionError, ssl.SSLEOFError)


def _exchange(connection: _PinnedConnection, target: Target, body: bytes, headers: dict[str, str], started: float):
    connection.request("POST", target.path, body=body, headers={**headers, "Host": _host_header(target)})
    answer = connection.getresponse()
    _drain(answer, started)
    return answer


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST ``body`` to ``url`` through the guard. Raises :class:`Refused` for an address
    that may not be called, ``OSError`` (timeouts, TLS, refused connections) and
    ``http.client.HTTPException`` for a broken answer."""
    target = parse(url)
    addresses = resolve(target)  # every time: a kept connection never skips the vetting
    context = _context()
    started = time.monotonic()
    last_error: OSError | None = None
    for address in addresses:
        key = _key(target, address)
        connection = _take(key, address)
        answer = None
        keep = False
        try:
            if connection is not None:
                try:
                    answer = _exchange(connection, target, body, headers, started)
                except _STALE:
                    connection.close()  # closed by the receiver while idle: a new one below
                    connection = None
            if answer is None:
                connection = _PinnedConnection(target, address, context)
                try:
                    connection.connect()
                except (ConnectionError, TimeoutError) as exc:
                    last_error = exc  # the name's next address, as browsers do
                    continue
                answer = _exchange(connection, target, body, headers, started)
            # Kept only after a 2xx read to the end on a connection both sides leave open.
            read_to_end = answer.isclosed() or answer.length == 0  # 0: the declared length, all read
            keep = 200 <= answer.status < 300 and read_to_end and not answer.will_close
            answer.close()  # the answer, not the connection: it may carry the next request
            return Response(
                status=answer.status,
                retry_after=(answer.getheader("Retry-After") or "")[:64],
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        finally:
            if connection is not None:
                if keep:
                    _keep(key, connection)
                else:
                    connection.close()
    raise last_error or OSError("no address could be reached")


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == 443 else f"{host}:{target.port}"


def _drain(answer: http.client.HTTPResponse, started: float) -> None:
    """Read at most BODY_CAP bytes of the answer, within TOTAL_SECONDS; the rest is left."""
    read = 0
    while read < BODY_CAP:
        if time.monotonic() - started > TOTAL_SECONDS:
            raise TimeoutError("the receiver took too long to answer")
        chunk = answer.read1(min(16 * 1024, BODY_CAP - read))
        if not chunk:
            return
        read += len(chunk)
