"""``detect(request, point)``: one hostile sign seen in a request, counted against its source.

The detection points (after OWASP AppSensor) and their weights are in ``POINTS``. A
detection:

1. is recorded as an ``intrusion_detected`` security event, sampled per network and point
   (``vouch.audit.sampling``: a scanner's thousands of requests add one event a minute,
   with the count), with the company and account when known, so a company's owners see on
   their Security events page what touched their company;
2. adds its weight to its source's decaying score (``vouch.shield.state``): a signed-in
   person's to their account only (they are accountable, and another's traffic on their
   shared network must never lock them out); anyone else's to their address and network;
3. past the scope's threshold, blocks the source for an escalating time, records an
   ``intrusion_blocked`` event (always: blocks are few) and queues one email to the
   operators for the incident (``vouch.shield.alerts``).

Sources in ``VOUCH_SHIELD_ALLOW`` (an operator's own monitoring, say) are never scored."""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from vouch.audit.events import record
from vouch.audit.models import EventAction, Outcome
from vouch.audit.sampling import record_sampled
from vouch.core import metrics
from vouch.core.network import network_of
from vouch.shield import alerts, state
from vouch.shield.points import POINTS, Point

log = logging.getLogger("vouch.shield")


@lru_cache(maxsize=4)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in values if n)


def _allowed() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _networks(tuple(getattr(settings, "VOUCH_SHIELD_ALLOW", ())))


def enabled() -> bool:
    # The benchmark switch that turns the throttles off (never honoured in production).
    return not getattr(settings, "VOUCH_PROTECTIONS_OFF", False)


def _unblockable(address: str) -> bool:
    """Addresses never scored: those operators allow, and loopback. A client on loopback is
    the operator on the machine or a proxy beside it; with no VOUCH_TRUSTED_PROXIES such a
    proxy's clients would all be one address, and one attacker's block would be everyone's.
    (In production without trusted proxies Vouch serves TLS itself: clients are real.)"""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if parsed.is_loopback or (
        parsed.version == 6 and parsed.ipv4_mapped is not None and parsed.ipv4_mapped.is_loopback
    ):
        return True
    return any(parsed in network for network in _allowed())


def signed_in_user_id(request: HttpRequest) -> int | None:
    """The account a request acts for: the signed-in person's, or, for a call with a valid
    API key, its creator's (``acting_user_id``, set by the API's middleware, which drops
    cookies). Either answers for their own account only, never for the address they share
    (an applicant tracking system calls from its provider's addresses)."""
    acting = getattr(request, "acting_user_id", None)
    if acting is not None:
        return acting
    user = getattr(request, "user", None)  # absent before AuthenticationMiddleware
    return user.pk if user is not None and user.is_authenticated else None


def detect(request: HttpRequest, point: str, *, detail: str = "") -> state.Block | None:
    """Count one detection of ``point`` in ``request``; returns the block it caused, if any.
    Never raises: the request is answered whatever happens here."""
    if not enabled():
        return None
    try:
        return _detect(request, POINTS[point], detail)
    except Exception:
        log.exception("shield: could not count a %s detection", point)
        return None


def _detect(request: HttpRequest, point: Point, detail: str) -> state.Block | None:
    address = (request.META.get("REMOTE_ADDR") or "").strip()
    if _unblockable(address):
        return None
    metrics.detections_total.labels(point=point.name).inc()
    request.shield_detected = True  # type: ignore[attr-defined]  # its answer's status is then not counted too
    moment = state.now()
    user_id = signed_in_user_id(request)
    details = {"point": point.name}
    if detail:
        details["detail"] = detail[:120]
    record_sampled(
        EventAction.INTRUSION_DETECTED,
        request=request,
        kind=f"intrusion:{point.name}",
        target=f"point:{point.name}",
        outcome=Outcome.BLOCKED if point.name in ("csrf",) else Outcome.FAILURE,
        details=details,
    )
    if user_id is not None:
        sources = [(state.ACCOUNT, str(user_id))]
    else:
        sources = [(state.ADDRESS, address or "unknown")]
        try:
            network = network_of(ipaddress.ip_address(address))
        except ValueError:
            network = None
        if network is not None:
            sources.append((state.NETWORK, network))
    caused = None
    for scope, source in sources:
        if state.blocks_for(moment, (scope, source)) is not None:
            continue  # already blocked (a link page let through, or a race): nothing to add
        score = state.add_score(scope, source, point.weight, moment)
        if score >= state.THRESHOLD[scope]:
            caused = _block(request, scope, source, point, moment, user_id)
    return caused


def _block(request, scope: str, source: str, point: Point, moment: float, user_id: int | None) -> state.Block:
    entry = state.block(scope, source, point.name, moment)
    metrics.blocks_total.labels(scope=scope).inc()
    try:
        record(
            EventAction.INTRUSION_BLOCKED,
            request=request,
            target=f"{scope}:{source}" if scope != state.ACCOUNT else f"user:{source}",
            outcome=Outcome.BLOCKED,
            details={"scope": scope, "level": entry.level, "seconds": int(entry.until - moment), "point": point.name},
        )
    except Exception:
        log.exception("shield: could not record a block")
    alerts.queue_block_alert(entry)
    return entry
