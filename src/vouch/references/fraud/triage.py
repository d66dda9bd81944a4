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

NONE, REVIEW, HIGH = "none", "review", "high"
LEVEL_LABELS = {NONE: "No concern", REVIEW: "Review", HIGH: "High risk"}
NUMBERS = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]


def cause_of(kind: str) -> str:
    return CAUSES.get(kind, kind)


def group_key(flag: Flag) -> str:
    """The key of the group a flag belongs to (``Group.key``)."""
    return _key(cause_of(flag.kind), context.parties(flag))


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

    @property
    def target(self) -> str:
        """The id of its "review all" form for the views' errors."""
        return f"referee-{self.reference.pk}"

    @property
    def open_count(self) -> int:
        return sum(len(group.open_flags) for group in self.groups)


@dataclass
class Triage:
    risk: Risk
    referees: list[RefereeSignals]
    groups: list[Group]
    flags: list[Flag]
    unassigned: list[Group] = field(default_factory=list)  # groups on no referee (none today)

    @property
    def open_count(self) -> int:
        return sum(1 for flag in self.flags if flag.reviewed_at is None)


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
    for cause in sorted(by_cause, key=lambda cause: (-max(g.severity for g in by_cause[cause]), CAUSE_RANK.get(cause, 99))):
        found = by_cause[cause]
        referees = {party for group in found for party in group.pair if party and party != context.CANDIDATE}
        one, several = CAUSE_TEXT.get(cause, ("", f"raised “{found[0].title}”", f"raised “{found[0].title}”"))[1:]
        if subject:
            n = max(1, len(referees))
            clause = f"{_count(n).lower()} referee{'s' if n != 1 else ''} {several if n != 1 else one}"
        else:
            clause = one
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


def group_flags(flags: list[Flag], references: dict) -> list[Group]:
    """Group weighed flags by cause and pair, in the referees' order then by cause."""
    groups: dict = {}
    for flag in flags:
        cause = cause_of(flag.kind)
        pair = context.parties(flag)
        group = groups.get((cause, pair))
        if group is None:
            group = groups[(cause, pair)] = Group(cause, pair, references.get(flag.reference_id))
        group.flags.append(flag)
    order = {reference_id: position for position, reference_id in enumerate(references)}
    for group in groups.values():
        group.flags.sort(key=lambda flag: (flag.raised_at, flag.pk.hex))
    return sorted(
        groups.values(),
        key=lambda group: (
            order.get(group.reference.pk if group.reference else None, -1),
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
    referees = []
    for reference in references.values():
        mine = [group for group in groups if group.reference is not None and group.reference.pk == reference.pk]
        if mine:
            referees.append(RefereeSignals(reference, mine, risk_of(mine, subject=False)))
    unassigned = [group for group in groups if group.reference is None]
    return Triage(risk_of(groups), referees, groups, flags, unassigned)
