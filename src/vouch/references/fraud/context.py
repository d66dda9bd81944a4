"""Context that lowers the weight of a weak fraud signal: the rules, in one place.

A shared network is weak evidence: colleagues in one office, or everyone on one mobile
carrier, share addresses. Two rules lower such a signal by one step (High to Medium,
Medium to Low), each with a reason the page shows beside it:

- **Known office**: every network the two parties shared is one of the company's own
  office networks (``WorkflowSettings.known_office_networks``, set by owners and admins).
- **Shared network**: every network they shared was also used, in the last
  ``SHARED_WINDOW``, by referees of at least ``SHARED_MIN_CANDIDATES`` other candidates
  of the company: a carrier, a public hotspot or a busy office, not one home.

Only the kinds in ``WEAK_KINDS`` are ever lowered. The same device, the candidate's own
email or phone, and the other checks keep their weight whatever the network: a candidate
answering for their referee in their own browser is still High. A lowered signal is
never hidden or deleted; its raw row keeps the severity it was raised with.

``facts_for`` reads what the rules need for one request (its touches' networks, the
addresses of those on a known office network, one count over other requests); the rules
themselves are plain functions of those facts, tested on their own."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from vouch.references.request_models import Actor, Flag, ReferenceRequest, Severity, Touch, WorkflowSettings

WEAK_KINDS = frozenset({"ip_candidate", "quick_open_network", "ip_referee"})
SHARED_WINDOW = timedelta(days=30)
SHARED_MIN_CANDIDATES = 3

OFFICE_REASON = "the shared network is a known office network of the company"
SHARED_REASON = (
    f"the shared network was also used by referees of {SHARED_MIN_CANDIDATES} or more other candidates "
    f"in the last {SHARED_WINDOW.days} days (a carrier or shared network)"
)

CANDIDATE = "candidate"  # the candidate's side of a pair, beside referees' ids


@dataclass
class Facts:
    """What the rules know of one request's networks, all as blind indexes."""

    # Party (CANDIDATE or a reference id) -> the networks its touches came from.
    networks: dict = field(default_factory=lambda: defaultdict(set))
    # Networks on which a touch's address lies in one of the company's office networks.
    office: set = field(default_factory=set)
    # Networks seen for referees of SHARED_MIN_CANDIDATES or more other candidates.
    busy: set = field(default_factory=set)


@dataclass(frozen=True)
class Weight:
    """A flag's weight after the rules: its severity now, and why it was lowered ("" if not)."""

    severity: int
    lowered_because: str = ""

    @property
    def lowered(self) -> bool:
        return bool(self.lowered_because)


def parties(flag: Flag) -> tuple:
    """The pair a flag is about: (CANDIDATE, referee) or (earlier referee, later referee),
    read from its key (``kind:referee`` or ``kind:earlier:later``, hex ids)."""
    parts = flag.key.split(":")
    if flag.kind.endswith("_referee") and len(parts) == 3:
        return (parts[1], parts[2])
    reference = flag.reference_id.hex if flag.reference_id else ""
    return (CANDIDATE, reference)


def shared_networks(flag: Flag, facts: Facts) -> set:
    first, second = parties(flag)
    return facts.networks.get(first, set()) & facts.networks.get(second, set())


def rule_known_office(flag: Flag, facts: Facts) -> str:
    """Lowered when every network the two parties shared is a known office network."""
    shared = shared_networks(flag, facts)
    return OFFICE_REASON if shared and shared <= facts.office else ""


def rule_shared_network(flag: Flag, facts: Facts) -> str:
    """Lowered when every network the two parties shared is busy with other candidates."""
    shared = shared_networks(flag, facts)
    return SHARED_REASON if shared and shared <= facts.busy else ""


RULES = (rule_known_office, rule_shared_network)


def lower(severity: int) -> int:
    steps: dict[int, int] = {Severity.HIGH: Severity.MEDIUM, Severity.MEDIUM: Severity.LOW}
    return steps.get(severity, Severity.LOW)


def weigh(flag: Flag, facts: Facts) -> Weight:
    """The flag's weight: lowered one step by the first rule that applies, at most once."""
    if flag.kind not in WEAK_KINDS:
        return Weight(flag.severity)
    for rule in RULES:
        reason = rule(flag, facts)
        if reason:
            return Weight(lower(flag.severity), reason)
    return Weight(flag.severity)


# --- the facts --------------------------------------------------------------------------


def parse_networks(values: list[str]) -> list:
    """The stored office networks as ``ip_network`` objects (stored values were checked
    when saved; one that no longer parses is skipped rather than failing a page)."""
    networks = []
    for value in values or []:
        try:
            networks.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            continue
    return networks


def in_any(ip: str, networks: list) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == network.version and address in network for network in networks)


def facts_for(reference_request: ReferenceRequest, flags: list[Flag]) -> Facts:
    """Read the facts for the weak flags of one request (no query when it has none)."""
    facts = Facts()
    if not any(flag.kind in WEAK_KINDS for flag in flags):
        return facts
    touches = list(
        Touch.objects.filter(request_id=reference_request.pk, network_index__isnull=False).only(
            "id", "actor", "reference_id", "network_index", "ip"
        )
    )
    offices = parse_networks(WorkflowSettings.current().known_office_networks)
    for touch in touches:
        party = CANDIDATE if touch.actor == Actor.CANDIDATE else (touch.reference_id.hex if touch.reference_id else "")
        facts.networks[party].add(touch.network_index)
        # Only the addresses of a request with weak flags and a company with offices are decrypted.
        if offices and touch.network_index not in facts.office and in_any(str(touch.ip), offices):
            facts.office.add(touch.network_index)
    referee_networks = set().union(*(nets for party, nets in facts.networks.items() if party != CANDIDATE))
    if referee_networks:
        seen = (
            Touch.objects.filter(
                network_index__in=referee_networks,
                actor=Actor.REFEREE,
                at__gte=timezone.now() - SHARED_WINDOW,
            )
            .exclude(request__candidate_id=reference_request.candidate_id)
            .values_list("network_index", "request__candidate_id")
            .distinct()
        )
        candidates: dict = defaultdict(set)
        for network, candidate_id in seen:
            candidates[network].add(candidate_id)
        facts.busy = {network for network, ids in candidates.items() if len(ids) >= SHARED_MIN_CANDIDATES}
    return facts
