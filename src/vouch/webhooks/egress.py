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

``VOUCH_WEBHOOKS_ALLOW_NETWORKS`` (tests only; refused in production) lets a local
receiver's network through."""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
# Headers and body together: a receiver that drips its answer is cut off.
TOTAL_SECONDS = 15.0
BODY_CAP = 64 * 1024
MAX_URL = 2000

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
    context = ssl.create_default_context(cafile=settings.VOUCH_WEBHOOKS_CA_FILE or None)
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


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST ``body`` to ``url`` through the guard. Raises :class:`Refused` for an address
    that may not be called, ``OSError`` (timeouts, TLS, refused connections) and
    ``http.client.HTTPException`` for a broken answer."""
    target = parse(url)
    addresses = resolve(target)
    context = _context()
    started = time.monotonic()
    last_error: OSError | None = None
    for address in addresses:
        connection = _PinnedConnection(target, address, context)
        try:
            try:
                connection.connect()
            except (ConnectionError, TimeoutError) as exc:
                last_error = exc  # the name's next address, as browsers do
                continue
            connection.request("POST", target.path, body=body, headers={**headers, "Host": _host_header(target)})
            answer = connection.getresponse()
            _drain(answer, started)
            return Response(
                status=answer.status,
                retry_after=(answer.getheader("Retry-After") or "")[:64],
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        finally:
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
