"""Fraud signals: where and when a candidate or referee acted, and the flags raised from it.

``record`` is called by the candidate's and the referee's pages after each action
succeeds (the workflow change is already saved). It keeps a :class:`Touch`: the client
address (encrypted) and its blind index, the blind index of the address's network (/24
or /64), and a device: the random ``__Host-vouch_link_device`` cookie set by
``link_required`` plus the browser family from the User-Agent, kept only as a blind
index (the cookie's raw value is never stored) beside the encrypted family name for
the explanations. Blind indexes use the company's own key, so a device or address
cannot be followed from one company to another.

``evaluate`` runs every check on one request and raises the flags not raised before
(``Flag.key`` is unique per request), each with a severity and an explanation a
recruiter can act on, a timeline line, and the request's flag counters in step. It
reads a handful of rows (the request's references, touches and flag keys, and one
lookup of other requests' referees) and decrypts only what an explanation needs.

The actions recorded: candidate ``opened``, ``confirmed``, ``nominated``, ``replaced``;
referee ``opened``, ``confirmed``, ``saved``, ``submitted``, ``declined``. Page views
(``opened``) and progress saves (``saved``) are kept once per address and device:
repeats add nothing the checks could use."""

from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from ua_parser import parse

from vouch.accounts import user_service
from vouch.guard.risk import client_ip
from vouch.references import flows, signals
from vouch.references.desk import notices
from vouch.references.fraud import freemail
from vouch.references.fraud.titles import title_of
from vouch.references.reports.data import identity_checks
from vouch.references.request_models import (
    Actor,
    Flag,
    Reference,
    ReferenceRequest,
    Relationship,
    Severity,
    Touch,
)
from vouch.tenancy import company_db
from vouch.vault.fields import blind_index

log = logging.getLogger("vouch.references")

CANDIDATE_ACTIONS = ("opened", "confirmed", "nominated", "replaced")
REFEREE_ACTIONS = ("opened", "confirmed", "saved", "submitted", "declined")
REPEATABLE_ACTIONS = frozenset({"opened", "saved"})
MAX_USER_AGENT = 512  # enough for any real browser; the header is attacker input

QUICK_OPEN = timedelta(minutes=10)
MIN_ANSWER_SECONDS = 60
SECONDS_PER_QUESTION = 8

# --- recording -------------------------------------------------------------------------

# The built-in "How did you work with the candidate?" question (``questionnaires.builtin``)
# and its answers as the nomination's relationship; "Other" compares with nothing.
RELATIONSHIP_QUESTION_ID = "relationship"
RELATIONSHIP_PROMPT = "how did you work with the candidate?"
ANSWERED_AS: dict[str, str | None] = {
    "I managed them": Relationship.MANAGER,
    "They managed me": Relationship.REPORT,
    "Peer or colleague": Relationship.PEER,
    "Client or customer": Relationship.CLIENT,
    "Other": None,
}
NOMINATED_AS: dict[str, str] = {
    Relationship.MANAGER: "manager",
    Relationship.PEER: "peer",
    Relationship.REPORT: "direct report",
    Relationship.CLIENT: "client",
}


def relationship_question(questions: list[dict]) -> dict | None:
    """The questionnaire's "How did you work with the candidate?" question (by the
    built-in's id, or by its prompt in a company's copy), when it offers the built-in's
    choices."""
    for question in questions:
        if question.get("type") != "single":
            continue
        if question.get("id") == RELATIONSHIP_QUESTION_ID or (
            str(question.get("prompt", "")).strip().casefold() == RELATIONSHIP_PROMPT
        ):
            return question
    return None


def device_family(user_agent: str) -> str:
    """ "Chrome Mobile on Android"-style: the browser and system families only (no
    versions, no device model), so it describes without fingerprinting."""
    result = parse((user_agent or "")[:MAX_USER_AGENT])
    browser = result.user_agent.family if result.user_agent and result.user_agent.family != "Other" else ""
    system = result.os.family if result.os and result.os.family != "Other" else ""
    if browser and system:
        return f"{browser} on {system}"[:120]
    return (browser or system or "Unknown browser")[:120]


def network_of(ip: str) -> str:
    """The address's /24 (IPv4) or /64 (IPv6): one home, office or mobile cell, roughly."""
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def record(
    request: HttpRequest,
    reference_request: ReferenceRequest,
    *,
    actor: str,
    action: str,
    reference: Reference | None = None,
) -> Touch | None:
    """Record one candidate or referee action (address, device, time), then run the
    checks. Returns the touch, or None when it repeated an earlier one or could not be
    kept: a failure here is logged, never shown to the person acting."""
    if actor not in Actor.values:
        raise ValueError(f"unknown actor {actor!r}")
    if actor == Actor.REFEREE and reference is None:
        raise ValueError("a referee's action names their reference")
    try:
        # No transaction around the check and the insert: on SQLite it would hold the
        # company's write lock from the check on. Two identical touches at the same moment
        # may both be kept, which changes no check's outcome.
        touch = _store(request, reference_request, actor=actor, action=action, reference=reference)
    except Exception:
        log.exception("fraud: could not record a %s %s", actor, action)
        return None
    if touch is not None:
        # Not in one transaction: its reads would hold the company database's write lock
        # (transactions start IMMEDIATE on SQLite) while the checks run, and every save of
        # the company would wait. Each flag is written in its own, and raised once by key.
        try:
            evaluate(reference_request)
        except Exception:
            log.exception("fraud: checks failed for request %s", reference_request.pk)
    return touch


def _store(request, reference_request, *, actor, action, reference) -> Touch | None:
    ip = client_ip(request) or ""
    family = device_family(request.META.get("HTTP_USER_AGENT", ""))
    cookie = getattr(request, "vouch_link_device", "") or ""
    ip_index = blind_index("text", ip) if ip else None
    device_index = blind_index("text", f"{cookie}|{family}") if cookie else None
    if (
        action in REPEATABLE_ACTIONS
        and Touch.objects.filter(
            request=reference_request,
            reference=reference,
            actor=actor,
            action=action,
            ip_index=ip_index,
            device_index=device_index,
        ).exists()
    ):
        return None
    return Touch.objects.create(  # type: ignore[misc]  # typing debt: an Optional not narrowed here
        request=reference_request,
        reference=reference,
        actor=actor,
        action=action[:32],
        ip=ip,
        device_family=family,
        ip_index=ip_index,
        network_index=blind_index("text", network_of(ip)) if ip else None,
        device_index=device_index,
    )


# --- checking --------------------------------------------------------------------------


@dataclass
class _Finding:
    key: str
    kind: str
    severity: int
    reference: Reference
    explain: Callable[[], str]


def _family_of(touch_id) -> str:
    family = Touch.objects.filter(pk=touch_id).first()
    return family.device_family if family is not None and family.device_family else "the same browser"


def _seconds(value: float) -> str:
    value = int(round(value))
    if value < 120:
        return f"{value} second{'s' if value != 1 else ''}"
    return f"{value // 60} minutes"


class _Checks:
    """Every check of one request, over rows read once."""

    def __init__(self, reference_request: ReferenceRequest, references: list[Reference], touches: list[dict]):
        self.reference_request = reference_request
        self.candidate = reference_request.candidate
        self.references = references
        self.by_reference: dict = defaultdict(list)
        self.candidate_touches: list[dict] = []
        for touch in touches:
            if touch["actor"] == Actor.CANDIDATE:
                self.candidate_touches.append(touch)
            elif touch["reference_id"] is not None:
                self.by_reference[touch["reference_id"]].append(touch)
        self.findings: list[_Finding] = []
        self.reused_in: set = set()  # other requests sharing a referee's email or phone

    def add(self, key: str, kind: str, severity: int, reference: Reference, explain: Callable[[], str]) -> None:
        self.findings.append(_Finding(key[:120], kind, severity, reference, explain))

    @staticmethod
    def _shared(touches: list[dict], others: list[dict], field: str) -> dict | None:
        """The first of ``touches`` whose ``field`` index one of ``others`` also has."""
        seen = {touch[field] for touch in others if touch[field]}
        return next((touch for touch in touches if touch[field] and touch[field] in seen), None)

    def shared_with_candidate(self) -> None:
        for reference in self.references:
            mine = self.by_reference[reference.pk]
            device = self._shared(mine, self.candidate_touches, "device_index")
            if device is not None:
                touch_id = device["id"]
                self.add(
                    f"device_candidate:{reference.pk.hex}",
                    "device_candidate",
                    Severity.HIGH,
                    reference,
                    lambda touch_id=touch_id: (  # type: ignore[misc]  # a lambda mypy cannot infer
                        "This referee used the same device as the candidate (the same browser cookie and "
                        f"{_family_of(touch_id)}). Two people rarely share one browser: the candidate may have "
                        "answered for the referee. Check with the referee on a phone number you found yourself."
                    ),
                )
            if self._shared(mine, self.candidate_touches, "ip_index") is not None:
                self.add(
                    f"ip_candidate:{reference.pk.hex}",
                    "ip_candidate",
                    Severity.HIGH,
                    reference,
                    lambda: (
                        "This referee used the same internet address as the candidate. It can happen "
                        "innocently (one office or home network), but it is also what you would see if the "
                        "candidate answered for the referee. Check with the referee on a phone number you "
                        "found yourself."
                    ),
                )

    def shared_between_referees(self) -> None:
        for position, later in enumerate(self.references):
            for earlier in self.references[:position]:
                mine, theirs = self.by_reference[later.pk], self.by_reference[earlier.pk]
                pair = f"{earlier.pk.hex}:{later.pk.hex}"
                device = self._shared(mine, theirs, "device_index")
                if device is not None:
                    touch_id, other = device["id"], earlier
                    self.add(
                        f"device_referee:{pair}",
                        "device_referee",
                        Severity.HIGH,
                        later,
                        lambda touch_id=touch_id, other=other: (  # type: ignore[misc]  # a lambda mypy cannot infer
                            f"This referee used the same device as {other.name}, another referee of this "
                            f"request (the same browser cookie and {_family_of(touch_id)}). One person may "
                            "have answered for both."
                        ),
                    )
                if self._shared(mine, theirs, "ip_index") is not None:
                    self.add(
                        f"ip_referee:{pair}",
                        "ip_referee",
                        Severity.MEDIUM,
                        later,
                        lambda other=earlier: (  # type: ignore[misc]  # a lambda mypy cannot infer
                            f"This referee used the same internet address as {other.name}, another referee of "
                            "this request. Colleagues in one office often do; one person answering for both "
                            "would look the same."
                        ),
                    )

    def contact_of_candidate(self) -> None:
        for reference in self.references:
            if reference.email_index and reference.email_index == self.candidate.email_index:
                self.add(
                    f"email_candidate:{reference.pk.hex}",
                    "email_candidate",
                    Severity.HIGH,
                    reference,
                    lambda: "This referee's email address is the candidate's own.",
                )
            if reference.phone_index and reference.phone_index == self.candidate.phone_index:
                self.add(
                    f"phone_candidate:{reference.pk.hex}",
                    "phone_candidate",
                    Severity.HIGH,
                    reference,
                    lambda: "This referee's phone number is the candidate's own: calling it would reach the candidate.",
                )

    def reused_elsewhere(self) -> None:
        emails = {reference.email_index for reference in self.references if reference.email_index}
        phones = {reference.phone_index for reference in self.references if reference.phone_index}
        if not emails and not phones:
            return
        others = (
            Reference.objects.filter(Q(email_index__in=emails) | Q(phone_index__in=phones))
            .exclude(request__candidate_id=self.reference_request.candidate_id)
            .values_list("email_index", "phone_index", "request_id")
        )
        by_email, by_phone = defaultdict(set), defaultdict(set)
        for email_index, phone_index, request_id in others:
            if email_index in emails:
                by_email[email_index].add(request_id)
            if phone_index in phones:
                by_phone[phone_index].add(request_id)
        for reference in self.references:
            for kind, index, found, what in (
                ("email_reused", reference.email_index, by_email, "email address"),
                ("phone_reused", reference.phone_index, by_phone, "phone number"),
            ):
                count = len(found.get(index, ()))
                if index and count:
                    self.reused_in |= found[index]
                    self.add(
                        f"{kind}:{reference.pk.hex}",
                        kind,
                        Severity.MEDIUM,
                        reference,
                        lambda what=what, count=count: (  # type: ignore[misc]  # a lambda mypy cannot infer
                            f"This referee's {what} was also given for a referee of another candidate in your "
                            f"company ({count} other request{'s' if count != 1 else ''}). A real referee can "
                            "vouch for several people; one contact behind many candidates can be a reference "
                            "for hire."
                        ),
                    )

    def free_mail(self) -> None:
        if not self.reference_request.work_email_required:
            return
        for reference in self.references:
            if freemail.is_free_mail(reference.email):
                domain = freemail.domain_of(reference.email)
                self.add(
                    f"free_mail:{reference.pk.hex}",
                    "free_mail",
                    Severity.MEDIUM,
                    reference,
                    lambda domain=domain: (  # type: ignore[misc]  # a lambda mypy cannot infer
                        f"This request asked for referees' work email addresses, but this referee's address is "
                        f"at {domain}, a free email service anyone can sign up to. Check that the referee "
                        "works where they say."
                    ),
                )

    def fast_answers(self) -> None:
        submitted = [reference for reference in self.references if reference.submitted_at]
        if not submitted:
            return
        questions = len(self.reference_request.questionnaire_version.questions or [])
        least = max(MIN_ANSWER_SECONDS, SECONDS_PER_QUESTION * questions)
        for reference in submitted:
            starts = [t["at"] for t in self.by_reference[reference.pk] if t["action"] in ("opened", "confirmed")]
            starts += [moment for moment in (reference.opened_at,) if moment]
            start = min(starts) if starts else reference.started_at
            if start is None:
                continue
            took = max(0.0, (reference.submitted_at - start).total_seconds())  # type: ignore[operator]  # typing debt: an Optional not narrowed here
            if took < least:
                self.add(
                    f"fast_answers:{reference.pk.hex}",
                    "fast_answers",
                    Severity.MEDIUM,
                    reference,
                    lambda took=took, questions=questions, least=least: (  # type: ignore[misc]  # a lambda mypy cannot infer
                        f"This referee answered the {questions} question{'s' if questions != 1 else ''} in "
                        f"{_seconds(took)}, from opening the link to submitting. Reading and answering them "
                        f"takes most people at least {_seconds(least)}: the answers may have been prepared "
                        "by someone else."
                    ),
                )

    def quick_open_from_candidate_network(self) -> None:
        networks = {t["network_index"] for t in self.candidate_touches if t["network_index"]}
        if not networks:
            return
        for reference in self.references:
            soon = reference.nominated_at + QUICK_OPEN
            hit = next(
                (t for t in self.by_reference[reference.pk] if t["at"] <= soon and t["network_index"] in networks),
                None,
            )
            if hit is not None:
                minutes = max(0, int((hit["at"] - reference.nominated_at).total_seconds() // 60))
                when = f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else "less than a minute"
                self.add(
                    f"quick_open_network:{reference.pk.hex}",
                    "quick_open_network",
                    Severity.HIGH,
                    reference,
                    lambda when=when: (  # type: ignore[misc]  # a lambda mypy cannot infer
                        f"This referee opened their link {when} after the "
                        "candidate nominated them, from the same network the candidate used (addresses that "
                        "differ only in their last part). The candidate may have opened it themselves."
                    ),
                )

    def relationship_mismatch(self) -> None:
        """The candidate named the referee's role (manager, peer, direct report, client);
        the questionnaire's "How did you work with the candidate?" says how the referee
        sees it. A manager who answers as a client or peer is worth a call: the candidate
        may have inflated the reference."""
        question = relationship_question(self.reference_request.questionnaire_version.questions or [])
        if question is None:
            return
        for reference in self.references:
            if not reference.submitted_at or not reference.answers:
                continue
            answer = reference.answers.get(question["id"])
            if not isinstance(answer, str) or answer not in ANSWERED_AS:
                continue
            answered = ANSWERED_AS[answer]
            if answered is None or answered == reference.relationship:
                continue
            nominated = NOMINATED_AS.get(reference.relationship, reference.relationship)
            self.add(
                f"relationship_mismatch:{reference.pk.hex}",
                "relationship_mismatch",
                Severity.MEDIUM,
                reference,
                lambda nominated=nominated, answer=answer: (  # type: ignore[misc]  # a lambda mypy cannot infer
                    f"The candidate nominated this referee as their {nominated}; the referee answered "
                    f"\u201cHow did you work with the candidate?\u201d with \u201c{answer}\u201d. Ask the "
                    "referee how they worked together, on a phone number you found yourself."
                ),
            )

    def confirmation_contradicts(self) -> None:
        """The report's comparison of the nomination with the referee's own confirmation
        (organisation and dates, ``reports.data.identity_checks``), its differences as
        signals, so they count in the risk summary and are reviewed like the others."""
        for reference in self.references:
            if not reference.identity:
                continue
            rows = identity_checks(reference)
            organisation = rows[0]
            if organisation["mismatch"]:
                self.add(
                    f"confirmed_organisation:{reference.pk.hex}",
                    "confirmed_organisation",
                    Severity.MEDIUM,
                    reference,
                    lambda row=organisation: (  # type: ignore[misc]  # a lambda mypy cannot infer
                        f"The candidate said they worked with this referee at {row['nominated']}; the referee "
                        f"confirmed {row['confirmed'] or 'no organisation'}. It may be a new name of the same "
                        "company, or the referee may not have worked there."
                    ),
                )
            dates = [row for row in rows[1:] if row["mismatch"]]
            if dates:
                self.add(
                    f"confirmed_dates:{reference.pk.hex}",
                    "confirmed_dates",
                    Severity.MEDIUM,
                    reference,
                    lambda dates=dates: (  # type: ignore[misc]  # a lambda mypy cannot infer
                        "The referee's dates differ from the candidate's: "
                        + "; ".join(
                            f"{row['label'].lower()} {row['nominated']} (candidate) against {row['confirmed']} "
                            f"(referee), {row['note'].rstrip('.')}"
                            for row in dates
                        )
                        + ". People remember dates loosely, but not by this much."
                    ),
                )

    def run(self) -> list[_Finding]:
        self.shared_with_candidate()
        self.shared_between_referees()
        self.contact_of_candidate()
        self.reused_elsewhere()
        self.free_mail()
        self.fast_answers()
        self.quick_open_from_candidate_network()
        self.relationship_mismatch()
        self.confirmation_contradicts()
        return self.findings


REUSE_KINDS = frozenset({"email_reused", "phone_reused"})
MAX_REUSE_SPREAD = 20


def evaluate(reference_request: ReferenceRequest) -> list[Flag]:
    """Run every check on the request; return the flags newly raised. Safe to run again
    and concurrently: a flag already raised (by key) is never raised twice.

    A referee's contact found reused on other candidates' requests is flagged there too
    (their checks run once now, up to ``MAX_REUSE_SPREAD`` of them): an older request,
    maybe closed, would otherwise never learn of it."""
    raised, reused_in = _evaluate(reference_request)
    if reused_in and any(flag.kind in REUSE_KINDS for flag in raised):
        for other_id in sorted(reused_in, key=str)[:MAX_REUSE_SPREAD]:
            _evaluate(ReferenceRequest(pk=other_id))
    return raised


def _evaluate(reference_request: ReferenceRequest) -> tuple[list[Flag], set]:
    given = reference_request
    references = list(Reference.objects.filter(request_id=reference_request.pk).order_by("nominated_at", "id"))
    if not references:
        return [], set()
    reference_request = ReferenceRequest.objects.select_related("candidate", "questionnaire_version").get(
        pk=reference_request.pk
    )
    touches = list(
        Touch.objects.filter(request_id=reference_request.pk)
        .order_by("at", "id")
        .values("id", "reference_id", "actor", "action", "at", "ip_index", "network_index", "device_index")
    )
    checks = _Checks(reference_request, references, touches)  # type: ignore[arg-type]  # typing debt
    findings = checks.run()
    existing = set(Flag.objects.filter(request_id=reference_request.pk).values_list("key", flat=True))
    _refresh_reuse_counts(reference_request, [finding for finding in findings if finding.key in existing])
    raised = []
    for finding in findings:
        if finding.key in existing:
            continue
        existing.add(finding.key)
        try:
            with company_db.atomic():
                flag = Flag.objects.create(
                    request=reference_request,
                    reference=finding.reference,
                    kind=finding.kind,
                    key=finding.key,
                    severity=finding.severity,
                    explanation=finding.explain(),
                )
                flows.note(
                    reference_request,
                    "flag_raised",
                    f"Flag raised on {finding.reference.name} "
                    f"({Severity(finding.severity).label.lower()}): {title_of(finding.kind)}.",
                    reference=finding.reference,
                )
                notices.notify_high_flags([flag])
                signals.emit(
                    "flag.raised",
                    request_id=reference_request.pk,
                    reference_id=finding.reference.pk,
                    flag_id=flag.pk,
                    status=reference_request.status,
                )
        except IntegrityError:  # raised meanwhile by a concurrent check of this request
            continue
        raised.append(flag)
    if raised:
        _recount(given)
    return raised, checks.reused_in


def _refresh_reuse_counts(reference_request: ReferenceRequest, standing: list) -> None:
    """A reuse flag says on how many other requests the contact was given; more may have
    come since it was raised (their checks re-run this one). Its explanation is brought
    up to date, with no new flag or timeline entry, and a review already made stands."""
    current = {finding.key: finding for finding in standing if finding.kind in REUSE_KINDS}
    if not current:
        return
    for flag in Flag.objects.filter(request_id=reference_request.pk, key__in=current):
        explanation = current[flag.key].explain()
        if flag.explanation != explanation:
            flag.explanation = explanation
            flag.save(update_fields=["explanation"])


def _recount(reference_request: ReferenceRequest) -> None:
    """The request's flag counters, counted by the database as it writes them, so two
    checks finishing together cannot leave the older count."""
    flags = Flag.objects.filter(request_id=OuterRef("pk")).order_by().values("request_id")
    ReferenceRequest.objects.filter(pk=reference_request.pk).update(
        flag_count=Coalesce(Subquery(flags.annotate(n=Count("id")).values("n")), 0),
        open_flags=Coalesce(Subquery(flags.filter(reviewed_at__isnull=True).annotate(n=Count("id")).values("n")), 0),
    )
    reference_request.flag_count, reference_request.open_flags = (
        ReferenceRequest.objects.filter(pk=reference_request.pk).values_list("flag_count", "open_flags").get()
    )


# --- showing -------------------------------------------------------------------------


def flags_of(reference_request: ReferenceRequest) -> list[Flag]:
    """The request's flags for its page and report: open ones first, most severe first,
    each with its reference and ``reviewer_name`` (two queries in all)."""
    flags = list(
        Flag.objects.filter(request_id=reference_request.pk)
        .select_related("reference")
        .order_by(F("reviewed_at").asc(nulls_first=True), "-severity", "raised_at", "id")
    )
    names = user_service.member_names(flag.reviewed_by_id for flag in flags)
    for flag in flags:
        flag.reviewer_name = names.get(flag.reviewed_by_id, "")  # type: ignore[arg-type, attr-defined]  # an attribute set at run time
    return flags
