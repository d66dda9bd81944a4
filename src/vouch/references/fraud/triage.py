"""Fraud signals as a recruiter triages them: grouped, weighed and summarised.

- **Groups**: the flags of one cause on one pair (the candidate and a referee, or two
  referees) are one item with a count and the times they were raised: "same internet
  address as the candidate" and "opened within minutes from the candidate's network"
  are one cause (the referee was on the candidate's network). Every raw flag stays
  stored and listed under its group.
- **Weight**: each flag's severity after the context rules (``fraud.context``); a
  group weighs what its heaviest open flag weighs.
- **Risk summary**: none, review or high, for the request and for each referee, with
  one sentence saying why ("Two referees opened their links from the candidate's
  network (a known office network); no other concern.").

The order is fixed by the referees' nomination and each cause's rank, never by review:
a reviewed group stays where it was, marked reviewed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from vouch.references.fraud import context
from vouch.references.fraud.titles import title_of
from vouch.references.request_models import Flag, Reference, ReferenceRequest, Severity

# Kind -> cause. Kinds not listed are a cause of their own.
CAUSES = {
    "ip_candidate": "network_candidate",
    "quick_open_network": "network_candidate",
    "confirmed_organisation": "contradicts",
    "confirmed_dates": "contradicts",
    "email_candidate": "contact_candidate",
    "phone_candidate": "contact_candidate",
    "email_reused": "contact_reused",
    "phone_reused": "contact_reused",
}

# Cause -> (title, what one referee did, what several did), most telling first.
CAUSE_TEXT: dict[str, tuple[str, str, str]] = {
    "device_candidate": (
        "Same device as the candidate",
        "used the candidate's own device",
        "used the candidate's own device",
    ),
    "contact_candidate": (
        "The candidate's own contact details",
        "was given the candidate's own email address or phone number",
        "were given the candidate's own email address or phone number",
    ),
    "device_referee": (
        "Same device as another referee",
        "used the same device as another referee",
        "used the same device as another referee",
    ),
    "relationship_mismatch": (
        "Working relationship differs from the nomination",
        "described a different working relationship from the candidate's nomination",
        "described a different working relationship from the candidate's nomination",
    ),
    "contradicts": (
        "Confirmation contradicts the nomination",
        "confirmed an organisation or dates that contradict the nomination",
        "confirmed organisations or dates that contradict the nomination",
    ),
    "contact_reused": (
        "Contact details also given for another candidate",
        "has contact details also given for another candidate",
        "have contact details also given for other candidates",
    ),
    "fast_answers": ("Answered implausibly fast", "answered implausibly fast", "answered implausibly fast"),
    "network_candidate": (
        "On the candidate's network",
        "opened their link from the candidate's network",
        "opened their links from the candidate's network",
    ),
    "ip_referee": (
        "Same internet address as another referee",
        "used the same internet address as another referee",
        "used the same internet address as another referee",
    ),
    "free_mail": (
        "Free email address where a work address was asked for",
        "gave a free email address where a work address was asked for",
        "gave free email addresses where work addresses were asked for",
    ),
}
CAUSE_RANK = {cause: rank for rank, cause in enumerate(CAUSE_TEXT)}

# Causes between two referees (not the candidate and a referee): grouped per set of referees.
BETWEEN_REFEREES = frozenset({"device_referee", "ip_referee"})

NONE, REVIEW, HIGH = "none", "review", "high"
LEVEL_LABELS = {NONE: "No concern", REVIEW: "Review", HIGH: "High risk"}
NUMBERS = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]


def cause_of(kind: str) -> str:
    return CAUSES.get(kind, kind)


def _key(cause: str, pair: tuple) -> str:
    return "-".join((cause, *(part or "request" for part in pair)))


def _count(n: int) -> str:
    return NUMBERS[n] if n < len(NUMBERS) else str(n)


@dataclass
class Group:
    """The flags of one cause on one pair, shown as one item."""

    cause: str
    pair: tuple
    reference: Reference | None
    flags: list[Flag] = field(default_factory=list)
    referee_names: list[str] = field(default_factory=list)  # of a group between referees

    @property
    def key(self) -> str:
        """A stable id for the page's anchors and forms."""
        return _key(self.cause, self.pair)

    @property
    def title(self) -> str:
        if self.cause in CAUSE_TEXT:
            return CAUSE_TEXT[self.cause][0]
        return title_of(self.flags[0].kind)

    @property
    def count(self) -> int:
        return len(self.flags)

    @property
    def open_flags(self) -> list[Flag]:
        return [flag for flag in self.flags if flag.reviewed_at is None]

    @property
    def reviewed(self) -> bool:
        return not self.open_flags

    @property
    def times(self) -> list[datetime]:
        return [flag.raised_at for flag in self.flags]

    @property
    def severity(self) -> int:
        """The heaviest weight of its open flags (of all, once every one is reviewed)."""
        flags = self.open_flags or self.flags
        return max(flag.weight.severity for flag in flags)  # type: ignore[attr-defined]  # set by triage_of

    @property
    def severity_label(self) -> str:
        return Severity(self.severity).label

    @property
    def raised_label(self) -> str:
        """The severity its heaviest flag was raised with, before any lowering."""
        return Severity(max(flag.severity for flag in self.flags)).label

    @property
    def lowered_because(self) -> str:
        """The reason its flags were lowered, when every one of them was."""
        reasons = {flag.weight.lowered_because for flag in self.flags}  # type: ignore[attr-defined]  # set by triage_of
        return reasons.pop() if len(reasons) == 1 else ""

    @property
    def last_review(self) -> Flag | None:
        reviewed = [flag for flag in self.flags if flag.reviewed_at is not None]
        return max(reviewed, key=lambda flag: flag.reviewed_at) if reviewed else None  # type: ignore[arg-type, return-value]  # filtered above


@dataclass
class Risk:
    level: str
    sentence: str

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self.level]


@dataclass
class RefereeSignals:
    reference: Reference
    groups: list[Group]
    risk: Risk
    shared: list[Group] = field(default_factory=list)  # its groups with other referees, shown below

    @property
    def target(self) -> str:
        """The id of its "review all" form for the views' errors."""
        return f"referee-{self.reference.pk}"

    @property
    def open_count(self) -> int:
        """Its open flags: its own and those of its pairs with other referees."""
        hex_id = self.reference.pk.hex
        return sum(
            1 for group in self.groups + self.shared for flag in group.open_flags if hex_id in context.parties(flag)
        )


@dataclass
class Triage:
    risk: Risk
    referees: list[RefereeSignals]
    groups: list[Group]
    flags: list[Flag]
    between: list[Group] = field(default_factory=list)  # groups between referees, after the referees' sections

    @property
    def open_count(self) -> int:
        return sum(1 for flag in self.flags if flag.reviewed_at is None)

    def group_of(self, flag_id) -> Group | None:
        return next((group for group in self.groups if any(flag.pk == flag_id for flag in group.flags)), None)


def _level(groups: list[Group]) -> str:
    open_groups = [group for group in groups if not group.reviewed]
    if not open_groups:
        return NONE
    return HIGH if max(group.severity for group in open_groups) >= Severity.HIGH else REVIEW


def _clauses(groups: list[Group], *, subject: bool) -> list[str]:
    """One clause per open cause, most telling first: "two referees opened their links
    from the candidate's network (a known office network)"."""
    by_cause: dict[str, list[Group]] = {}
    for group in groups:
        if not group.reviewed:
            by_cause.setdefault(group.cause, []).append(group)
    clauses = []
    for cause in sorted(
        by_cause, key=lambda cause: (-max(g.severity for g in by_cause[cause]), CAUSE_RANK.get(cause, 99))
    ):
        found = by_cause[cause]
        referees = {party for group in found for party in group.pair if party and party != context.CANDIDATE}
        one, several = CAUSE_TEXT.get(cause, ("", f"raised “{found[0].title}”", f"raised “{found[0].title}”"))[1:]
        n = max(1, len(referees))
        if not subject:
            clause = one
        elif cause in BETWEEN_REFEREES:
            shared = "device" if cause == "device_referee" else "internet address"
            clause = (
                f"{_count(n).lower()} referees used the same {shared} as {'one another' if n > 2 else 'each other'}"
            )
        else:
            clause = f"{_count(n).lower()} referee{'s' if n != 1 else ''} {several if n != 1 else one}"
        reasons = {group.lowered_because for group in found}
        if reasons == {context.OFFICE_REASON}:
            clause += " (a known office network)"
        elif reasons == {context.SHARED_REASON}:
            clause += " (a network many other candidates' referees used)"
        clauses.append(clause)
    return clauses


def _sentence(groups: list[Group], *, subject: bool) -> str:
    clauses = _clauses(groups, subject=subject)
    reviewed = sum(1 for group in groups if group.reviewed)
    if not clauses:
        if reviewed:
            return f"{_count(reviewed)} signal{'s' if reviewed != 1 else ''} reviewed; no open concern."
        return "No signals; no concern."
    text = "; ".join(clauses)
    text = text[0].upper() + text[1:]
    return f"{text}; no other concern." if len(clauses) == 1 else f"{text}."


def risk_of(groups: list[Group], *, subject: bool = True) -> Risk:
    return Risk(_level(groups), _sentence(groups, subject=subject))


def _clusters(flags: list[Flag]) -> dict:
    """Referees linked by one cause between referees (A shares with B, B with C) as one
    set per cause: four colleagues behind one office address make six pairs, shown as
    one item naming the four. Returns {(cause, referee): the sorted tuple of its set}."""
    parent: dict = {}

    def find(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for flag in flags:
        cause = cause_of(flag.kind)
        if cause in BETWEEN_REFEREES:
            first, second = context.parties(flag)
            parent[find((cause, first))] = find((cause, second))
    members: dict = defaultdict(set)
    for node in list(parent):
        members[find(node)].add(node[1])
    return {node: tuple(sorted(members[find(node)])) for node in parent}


def group_flags(flags: list[Flag], references: dict) -> list[Group]:
    """Group weighed flags by cause and pair (or set of referees), in the referees'
    order then by cause; the groups between referees come last."""
    groups: dict = {}
    clusters = _clusters(flags)
    for flag in flags:
        cause = cause_of(flag.kind)
        pair = context.parties(flag)
        if cause in BETWEEN_REFEREES:
            pair = clusters[(cause, pair[0])]
        group = groups.get((cause, pair))
        if group is None:
            owner = None if cause in BETWEEN_REFEREES else references.get(flag.reference_id)
            group = groups[(cause, pair)] = Group(cause, pair, owner)
        group.flags.append(flag)
    order = {reference_id: position for position, reference_id in enumerate(references)}
    last = len(order)
    for group in groups.values():
        group.flags.sort(key=lambda flag: (flag.raised_at, flag.pk.hex))
    return sorted(
        groups.values(),
        key=lambda group: (
            order.get(group.reference.pk, last) if group.reference else last,
            CAUSE_RANK.get(group.cause, 99),
            group.key,
        ),
    )


def triage_of(reference_request: ReferenceRequest, flags: list[Flag]) -> Triage:
    """Weigh, group and summarise the request's flags (from ``checks.flags_of``). Each
    flag gets a ``weight`` (``context.Weight``)."""
    facts = context.facts_for(reference_request, flags)
    for flag in flags:
        flag.weight = context.weigh(flag, facts)  # type: ignore[attr-defined]  # set at run time for the pages
    references = {
        reference.pk: reference
        for reference in Reference.objects.filter(request_id=reference_request.pk)
        .only("id", "request_id", "name", "nominated_at")
        .order_by("nominated_at", "id")
    }
    groups = group_flags(flags, references)
    position = {reference.pk.hex: n for n, reference in enumerate(references.values())}
    names = {reference.pk.hex: reference.name for reference in references.values()}
    for group in groups:
        if group.reference is None:
            group.referee_names = [
                names[part] for part in sorted(group.pair, key=lambda p: position.get(p, 0)) if part in names
            ]
    referees = []
    for reference in references.values():
        mine = [group for group in groups if group.reference is not None and group.reference.pk == reference.pk]
        # Its risk counts its own flags in the groups shared with other referees (shown once, below).
        hex_id = reference.pk.hex
        theirs = [
            Group(group.cause, group.pair, None, [flag for flag in group.flags if hex_id in context.parties(flag)])
            for group in groups
            if group.reference is None and hex_id in group.pair
        ]
        if mine or theirs:
            referees.append(RefereeSignals(reference, mine, risk_of(mine + theirs, subject=False), theirs))
    between = [group for group in groups if group.reference is None]
    return Triage(risk_of(groups), referees, groups, flags, between)
