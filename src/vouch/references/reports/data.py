"""What a request's report shows, as plain data (dicts, lists, strings, numbers and
datetimes): built once by :func:`build_report` and given to both the page and the PDF
template, so the two cannot drift apart. :func:`fingerprint` digests the same data,
so a stored PDF is regenerated exactly when something it shows has changed.

Needs a company context. The caller checks the member may see the request
(``requests.access.request_or_404``)."""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import statistics
from datetime import date, datetime

from vouch.accounts import user_service
from vouch.references.fraud import triage
from vouch.references.fraud.titles import title_of
from vouch.references.request_models import (
    Flag,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    Severity,
    TimelineEvent,
)

# Dates a referee confirms may differ a little from the candidate's nomination
# (people remember months loosely); beyond this many months it is worth a look.
DATE_TOLERANCE_MONTHS = 3

# Completed references first, then the ones still open, then those given up on.
_STATUS_ORDER = {
    ReferenceStatus.COMPLETED: 0,
    ReferenceStatus.IN_PROGRESS: 1,
    ReferenceStatus.OPENED: 1,
    ReferenceStatus.INVITED: 1,
    ReferenceStatus.DECLINED: 2,
    ReferenceStatus.REPLACED: 3,
    ReferenceStatus.EXPIRED: 4,
    ReferenceStatus.CANCELLED: 5,
}

# Words that name a company's legal form, not the company: "Acme Ltd" is "Acme".
_LEGAL_FORMS = {
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "pty",
    "co",
    "corp",
    "corporation",
    "company",
    "the",
}
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})(?:-\d{1,2})?$")
_MONTH_NAMES = calendar.month_name[1:]

SUMMARISED = ("rating", "yes_no", "single", "multiple")


def has_content(references) -> bool:
    """Whether a request's report has anything in it: a referee has answered or declined.
    Until then the request page offers neither the report nor its PDF (an empty report
    reads as if something had gone missing)."""
    # By when, not by status: a referee who declined and was then replaced is still in the report.
    return any(reference.submitted_at or reference.declined_at for reference in references)


def short_id(reference_request: ReferenceRequest) -> str:
    """The first 8 hex digits of the request id: names a file without naming a person."""
    return reference_request.pk.hex[:8]


# --- identity checks -------------------------------------------------------------------


def normalise_organisation(value: str) -> str:
    words = re.sub(r"[^\w\s]", " ", (value or "").casefold()).split()
    return " ".join(word for word in words if word not in _LEGAL_FORMS)


def parse_month(value: str) -> int | None:
    """ "YYYY-MM" (or a full date) as a month count; None when blank or unreadable."""
    match = _MONTH.match((value or "").strip())
    if not match:
        return None
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        return None
    return year * 12 + month - 1


def month_label(value: str, *, open_end: bool = False) -> str:
    """ "2021-03" as "March 2021"; a blank end date as "present"."""
    months = parse_month(value)
    if months is None:
        return "present" if open_end and not (value or "").strip() else (value or "—")
    return f"{_MONTH_NAMES[months % 12]} {months // 12}"


def _months_apart(nominated: str, confirmed: str, *, present: int | None) -> int | None:
    """How far apart two months are; a blank end date counts as ``present``."""
    first = parse_month(nominated) if (nominated or "").strip() else present
    second = parse_month(confirmed) if (confirmed or "").strip() else present
    if first is None or second is None:
        return None
    return abs(first - second)


def identity_checks(reference: Reference) -> list[dict]:
    """The candidate's nomination beside the referee's own confirmation, each row with
    whether it differs enough to be worth checking and why."""
    identity = reference.identity or {}
    confirmed = bool(identity)
    when = reference.confirmed_at or reference.nominated_at
    present = when.year * 12 + when.month - 1 if when else None
    rows = []
    org_nominated, org_confirmed = reference.organisation, identity.get("organisation", "")
    org_differs = confirmed and normalise_organisation(org_nominated) != normalise_organisation(org_confirmed)
    rows.append(
        {
            "label": "Organisation",
            "nominated": org_nominated,
            "confirmed": org_confirmed if confirmed else "",
            "mismatch": org_differs,
            "note": "The referee names a different organisation from the candidate." if org_differs else "",
        }
    )
    for label, nominated_field, confirmed_field, open_end in (
        ("Worked together from", "worked_from", "candidate_from", False),
        ("Worked together until", "worked_to", "candidate_to", True),
    ):
        nominated = getattr(reference, nominated_field)
        value = identity.get(confirmed_field, "")
        apart = _months_apart(nominated, value, present=present) if confirmed else None
        differs = apart is not None and apart > DATE_TOLERANCE_MONTHS
        rows.append(
            {
                "label": label,
                "nominated": month_label(nominated, open_end=open_end),
                "confirmed": month_label(value, open_end=open_end) if confirmed else "",
                "mismatch": differs,
                "note": f"{apart} months apart." if differs else "",
            }
        )
    return rows


# --- answers and summaries ---------------------------------------------------------------


def _display(question: dict, value) -> str:
    kind = question["type"]
    if value is None or value == "" or value == []:
        return ""
    if kind == "rating":
        return f"{value} out of {question.get('scale', {}).get('max', '?')}"
    if kind == "yes_no":
        return "Yes" if value == "yes" else "No"
    if kind == "multiple":
        return ", ".join(str(item) for item in value) if isinstance(value, list) else str(value)
    return str(value)


def answers_of(questions: list[dict], answers: dict) -> list[dict]:
    return [
        {
            "id": question["id"],
            "prompt": question.get("prompt", ""),
            "type": question["type"],
            "value": _display(question, answers.get(question["id"])),
        }
        for question in questions
    ]


def summaries(questions: list[dict], completed: list[tuple[str, dict]]) -> list[dict]:
    """Across the referees who submitted (``(name, answers)`` pairs): per rating
    question each score with the mean, lowest and highest; yes/no counts; how often
    each choice was picked."""
    result = []
    for question in questions:
        kind, qid = question["type"], question["id"]
        if kind not in SUMMARISED:
            continue
        entry: dict = {"id": qid, "prompt": question.get("prompt", ""), "type": kind}
        given = [(name, answers.get(qid)) for name, answers in completed if answers.get(qid) not in (None, "", [])]
        if kind == "rating":
            scores = [(name, value) for name, value in given if isinstance(value, int)]
            numbers = [value for _, value in scores]
            scale = question.get("scale", {})
            entry.update(
                scale_min=scale.get("min"),
                scale_max=scale.get("max"),
                scores=[{"referee": name, "score": value} for name, value in scores],
                count=len(numbers),
                mean=round(statistics.fmean(numbers), 2) if numbers else None,
                min=min(numbers) if numbers else None,
                max=max(numbers) if numbers else None,
            )
        elif kind == "yes_no":
            entry.update(
                yes=sum(1 for _, value in given if value == "yes"),
                no=sum(1 for _, value in given if value == "no"),
                count=len(given),
            )
        else:
            picked: dict[str, list[str]] = {choice: [] for choice in question.get("choices", [])}
            for name, value in given:
                for choice in value if isinstance(value, list) else [value]:
                    picked.setdefault(choice, []).append(name)
            entry.update(
                choices=[{"choice": c, "count": len(names), "referees": names} for c, names in picked.items()],
                count=len(given),
            )
        result.append(entry)
    return result


# --- the whole report -------------------------------------------------------------------


def _status_note(reference: Reference, names: dict) -> str:
    status = reference.status
    if status == ReferenceStatus.REPLACED:
        replacement = names.get(reference.replaced_by_id) or "another referee"
        why = "Declined, then replaced" if reference.declined_at else "Did not answer in time; replaced"
        return f"{why} by {replacement}."
    if status == ReferenceStatus.EXPIRED:
        return "Did not answer before the deadline."
    if status == ReferenceStatus.CANCELLED:
        return "Closed when the request was cancelled."
    if status == ReferenceStatus.DECLINED:
        return "Declined to give a reference."
    if status in (ReferenceStatus.INVITED, ReferenceStatus.OPENED, ReferenceStatus.IN_PROGRESS):
        return "Has not submitted yet: answers appear here once they do."
    return ""


def _flag_label(kind: str) -> str:
    """The same short title the request page shows for this kind of flag."""
    return title_of(kind) or "Flag"


def _risk(risk: triage.Risk | None) -> dict | None:
    return {"level": risk.level, "label": risk.label, "sentence": risk.sentence} if risk is not None else None


def build_report(reference_request: ReferenceRequest) -> dict:
    """Everything the report shows, for one request."""
    candidate = reference_request.candidate
    version = reference_request.questionnaire_version
    questions = version.questions or []
    references = sorted(
        Reference.objects.filter(request=reference_request),
        key=lambda r: (_STATUS_ORDER.get(r.status, 9), r.nominated_at, str(r.pk)),  # type: ignore[call-overload]  # typing debt
    )
    reference_names = {reference.pk: reference.name for reference in references}
    flags = list(Flag.objects.filter(request=reference_request))
    timeline = list(TimelineEvent.objects.filter(request=reference_request))
    members = user_service.member_names(
        {reference_request.created_by_id} | {f.reviewed_by_id for f in flags} | {e.actor_id for e in timeline}
    )
    # Weighed, grouped and summarised as on the request page; every raw flag is listed below.
    signals = triage.triage_of(reference_request, flags)
    risk_by_reference = {item.reference.pk: item.risk for item in signals.referees}
    flags_by_reference: dict = {}
    flag_rows = []
    for flag in flags:
        row = {
            "id": str(flag.pk),
            "kind": flag.kind,
            "label": _flag_label(flag.kind),
            "severity": flag.severity,
            "severity_label": Severity(flag.severity).label if flag.severity in Severity.values else "",
            "explanation": flag.explanation,
            "referee": reference_names.get(flag.reference_id, ""),  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
            "raised_at": flag.raised_at,
            "reviewed": flag.reviewed_at is not None,
            "reviewed_at": flag.reviewed_at,
            "reviewed_by": members.get(flag.reviewed_by_id, "") if flag.reviewed_by_id else "",
            "review_comment": flag.review_comment,
            "lowered_because": flag.weight.lowered_because,  # type: ignore[attr-defined]  # set by triage_of
            "weight_label": Severity(flag.weight.severity).label,  # type: ignore[attr-defined]  # set by triage_of
        }
        flag_rows.append(row)
        flags_by_reference.setdefault(flag.reference_id, []).append(row)
    referee_rows = []
    completed = []
    for reference in references:
        done = reference.status == ReferenceStatus.COMPLETED
        if done:
            completed.append((reference.name, reference.answers or {}))
        identity = reference.identity or {}
        referee_rows.append(
            {
                "id": str(reference.pk),
                "name": reference.name,
                "email": reference.email,
                "phone": reference.phone,
                "relationship": reference.get_relationship_display(),
                "status": reference.status,
                "status_label": reference.get_status_display(),
                "status_note": _status_note(reference, reference_names),
                "completed": done,
                "nominated_at": reference.nominated_at,
                "confirmed_at": reference.confirmed_at,
                "submitted_at": reference.submitted_at,
                "declined_at": reference.declined_at,
                # Shown to the company also once the referee has been replaced.
                "decline_reason": reference.decline_reason if reference.declined_at else "",
                "job_title": identity.get("job_title", ""),
                "candidate_title": identity.get("candidate_title", ""),
                "identity_confirmed": bool(identity),
                "checks": identity_checks(reference),
                "mismatches": 0,
                "answers": answers_of(questions, reference.answers or {}) if done else [],
                "flags": flags_by_reference.get(reference.pk, []),
                "risk": _risk(risk_by_reference.get(reference.pk)),
            }
        )
        referee_rows[-1]["mismatches"] = sum(1 for row in referee_rows[-1]["checks"] if row["mismatch"])
    return {
        "request": {
            "id": str(reference_request.pk),
            "short_id": short_id(reference_request),
            "role": reference_request.role,
            "status": reference_request.status,
            "status_label": reference_request.get_status_display(),
            "created_at": reference_request.created_at,
            "created_by": members.get(reference_request.created_by_id, "") if reference_request.created_by_id else "",
            "deadline": reference_request.deadline,
            "closed_at": reference_request.closed_at,
            "referees_required": reference_request.referees_required,
            "references_completed": len(completed),
            "questionnaire": f"{version.questionnaire.name} (version {version.number})",
            "guidance": reference_request.guidance,
        },
        "candidate": {"name": candidate.name, "email": candidate.email, "phone": candidate.phone},
        "referees": referee_rows,
        "summaries": summaries(questions, completed),
        "flags": flag_rows,
        "open_flags": sum(1 for row in flag_rows if not row["reviewed"]),
        "risk": _risk(signals.risk) if flags else None,
        "timeline": [
            {
                "at": event.at,
                "kind": event.kind,
                "summary": event.summary,
                "actor": members.get(event.actor_id, "") if event.actor_id else "",
            }
            for event in timeline
        ],
    }


def _canonical(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not part of a report: {type(value).__name__}")


def fingerprint(report: dict) -> str:
    """SHA-256 of the report's data in one canonical form. The data holds the
    request's random id and exact times, so the digest cannot be used to confirm
    guesses of what a report says."""
    encoded = json.dumps(report, default=_canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()
