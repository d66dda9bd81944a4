"""A request's status in a sentence that says what is needed: "Awaiting candidate" alone
hides that two references are in and one referee declined."""

from __future__ import annotations

from collections.abc import Iterable

from vouch.references.request_models import (
    ACTIVE_REFERENCE_STATUSES,
    OPEN_REFERENCE_STATUSES,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
)


def _referees(count: int) -> str:
    return f"{count} referee{'s' if count != 1 else ''}"


def short_line(status: str, completed: int, required: int) -> str:
    """What the request list can say from its counters alone ("" when the badge says it)."""
    if status == RequestStatus.AWAITING_CANDIDATE and completed:
        return f"{completed} of {required} in: the candidate must nominate another referee"
    if status == RequestStatus.IN_PROGRESS:
        return f"{completed} of {required} in"
    return ""


def status_line(reference_request: ReferenceRequest, references: Iterable) -> str:
    """The request page's sentence, from its references (already read by the page)."""
    statuses = [reference.status for reference in references]
    completed = statuses.count(ReferenceStatus.COMPLETED)
    required = reference_request.referees_required
    status = reference_request.status
    if status == RequestStatus.AWAITING_CANDIDATE:
        active = sum(1 for value in statuses if value in ACTIVE_REFERENCE_STATUSES)
        missing = max(0, required - active)
        declined = statuses.count(ReferenceStatus.DECLINED)
        if not statuses:
            return f"Waiting for the candidate to nominate {_referees(required)}."
        said = f"{completed} of {required} references in"
        if declined:
            said += f", {declined} declined"
        more = f"{missing} more referee{'s' if missing != 1 else ''}"
        return f"{said}: waiting for the candidate to nominate {more}."
    if status in (RequestStatus.AWAITING_REFEREES, RequestStatus.IN_PROGRESS):
        waiting = sum(1 for value in statuses if value in OPEN_REFERENCE_STATUSES)
        return f"{completed} of {required} references in: waiting for {_referees(waiting)} to answer."
    if status == RequestStatus.COMPLETED:
        return "All references are in: the report is ready."
    if status == RequestStatus.EXPIRED:
        return f"The deadline passed with {completed} of {required} references in."
    return "Cancelled."
