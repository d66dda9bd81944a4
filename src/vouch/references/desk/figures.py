"""What the dashboard shows: counts by status, what needs the member's action, recent
activity and turnaround figures, for the requests the member sees (``Visibility``),
in the member's own view (their requests) or the company's (all they may see).

Every figure is a handful of queries on plain columns (statuses, dates, counters), so
the page's cost does not grow with the number of requests shown: tests/references/
test_desk.py holds its query count, and docs/features.md gives its time with 10,000
requests. Only the few rows listed are decrypted."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from vouch.references.request_models import (
    OPEN_REFERENCE_STATUSES,
    OPEN_REQUEST_STATUSES,
    Flag,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    ReportView,
    RequestStatus,
    Severity,
    TimelineEvent,
    WorkflowSettings,
)
from vouch.references.requests.access import Visibility

# A request whose deadline is this close needs a look (a nudge, or a later deadline).
NEAR_DEADLINE = timedelta(days=2)
# Rows shown per kind of action; the count says how many there are in all.
ACTION_ROWS = 5
RECENT_ROWS = 10
TURNAROUND_WINDOWS = (30, 90)


class ActionKind:
    REFEREE = "referee"
    DEADLINE = "deadline"
    HIGH_FLAG = "high_flag"
    UNREAD_REPORT = "unread_report"


ACTION_TITLES = {
    ActionKind.REFEREE: "Referees who declined or have not answered",
    ActionKind.DEADLINE: "Deadlines in the next two days",
    ActionKind.HIGH_FLAG: "Open high fraud signals",
    ActionKind.UNREAD_REPORT: "Completed reports you have not opened",
}


@dataclass
class ActionList:
    kind: str
    title: str
    count: int
    rows: list[ReferenceRequest]


@dataclass
class Turnaround:
    days: int
    requests: int
    median_first_nomination: timedelta | None
    median_completion: timedelta | None
    nominated: int
    response_rate: float | None  # completed or declined, of the referees nominated
    decline_rate: float | None


@dataclass
class Desk:
    mine: bool  # the member's own requests (else all they may see)
    can_choose: bool  # whether the member may switch between the two views
    total: int
    by_status: list[tuple[str, str, int]]  # (status, label, count), every status
    actions: list[ActionList]
    recent: list[TimelineEvent] = field(default_factory=list)
    turnaround: list[Turnaround] = field(default_factory=list)

    @property
    def action_count(self) -> int:
        return sum(action.count for action in self.actions)


def scope(seen: Visibility, user_id: int, *, want_company: bool) -> tuple[QuerySet[ReferenceRequest], bool]:
    """The requests the dashboard counts, and whether that is the member's own view. A
    member limited to their own requests has only that view, whatever they ask for."""
    everything = ReferenceRequest.objects.all()
    if seen.everything and want_company:
        return everything, False
    if seen.everything:
        return everything.filter(created_by_id=user_id), True
    return seen.of(everything), True


def referee_needs_action(settings: WorkflowSettings, now: datetime) -> Q:
    """An open request with a referee who declined (and was not replaced) or has not
    answered past the replacement time."""
    stale = now - timedelta(days=settings.replace_after_days)
    references = Reference.objects.filter(request_id=OuterRef("pk"))
    declined = references.filter(status=ReferenceStatus.DECLINED)
    unanswered = references.filter(status__in=OPEN_REFERENCE_STATUSES, nominated_at__lt=stale)
    return Q(status__in=OPEN_REQUEST_STATUSES) & (Exists(declined) | Exists(unanswered))


def needs_action(settings: WorkflowSettings, user_id: int, now: datetime) -> Q:
    """Every rule of "needs your action" in one condition (the list's marker)."""
    return referee_needs_action(settings, now) | _near_deadline(now) | _high_flag() | _unread_report(user_id)


def _near_deadline(now: datetime) -> Q:
    return Q(status__in=OPEN_REQUEST_STATUSES, deadline__lte=now + NEAR_DEADLINE)


def _high_flag() -> Q:
    # open_flags is kept in step with the flags: only requests with any are looked into.
    high = Flag.objects.filter(request_id=OuterRef("pk"), severity__gte=Severity.HIGH, reviewed_at__isnull=True)
    return Q(open_flags__gt=0) & Exists(high)


def _unread_report(user_id: int) -> Q:
    read = ReportView.objects.filter(request_id=OuterRef("pk"), user_id=user_id)
    return Q(status=RequestStatus.COMPLETED) & ~Exists(read)


def _rules(settings: WorkflowSettings, user_id: int, now: datetime) -> list[tuple[str, Q, tuple[str, ...]]]:
    return [
        (ActionKind.HIGH_FLAG, _high_flag(), ("-open_flags", "deadline")),
        (ActionKind.REFEREE, referee_needs_action(settings, now), ("deadline", "id")),
        (ActionKind.DEADLINE, _near_deadline(now), ("deadline", "id")),
        (ActionKind.UNREAD_REPORT, _unread_report(user_id), ("-closed_at", "id")),
    ]


def action_ids(
    requests: QuerySet[ReferenceRequest], user_id: int, ids: list[UUID], settings: WorkflowSettings
) -> set[UUID]:
    """Which of ``ids`` need the member's action (the request list's marker): one query."""
    if not ids:
        return set()
    condition = needs_action(settings, user_id, timezone.now())
    return set(requests.filter(pk__in=ids).filter(condition).values_list("pk", flat=True))


def build(seen: Visibility, user_id: int, *, want_company: bool, now: datetime | None = None) -> Desk:
    now = now or timezone.now()
    settings = WorkflowSettings.current()
    requests, mine = scope(seen, user_id, want_company=want_company)
    counts = dict(requests.order_by().values_list("status").annotate(n=Count("pk")))
    by_status = [(status, label, counts.get(status, 0)) for status, label in RequestStatus.choices]
    actions = []
    for kind, condition, order in _rules(settings, user_id, now):
        matching = requests.filter(condition)
        rows = list(matching.select_related("candidate").order_by(*order)[:ACTION_ROWS])
        # Counted only when the rows fill the list: most companies have fewer.
        count = len(rows) if len(rows) < ACTION_ROWS else matching.count()
        actions.append(ActionList(kind, ACTION_TITLES[kind], count, rows))
    return Desk(
        mine=mine,
        can_choose=seen.everything,
        total=sum(counts.values()),
        by_status=by_status,
        actions=actions,
        recent=recent(requests),
        turnaround=turnaround(requests, now),
    )


def recent(requests: QuerySet[ReferenceRequest]) -> list[TimelineEvent]:
    """The latest lines of the timelines of these requests, newest first."""
    return list(
        TimelineEvent.objects.filter(request__in=requests.values("pk"))
        .select_related("request__candidate")
        .order_by("-at", "-id")[:RECENT_ROWS]
    )


def _median(values: list[timedelta]) -> timedelta | None:
    return statistics.median(values) if values else None


def turnaround(requests: QuerySet[ReferenceRequest], now: datetime) -> list[Turnaround]:
    """For requests created in the last 30 and 90 days: the median time from the
    request to the candidate's first nomination and to completion, and of the
    referees nominated on them, how many answered (completed or declined) and how many
    declined. Two queries for both windows."""
    since = now - timedelta(days=max(TURNAROUND_WINDOWS))
    window = requests.filter(created_at__gte=since)
    rows = list(
        window.order_by()
        .annotate(first_nominated=Min("references__nominated_at"))
        .values_list("created_at", "status", "closed_at", "first_nominated")
    )
    # Every referee nominated, replaced ones too (a decline that was replaced is still a decline).
    references = list(
        Reference.objects.filter(request__in=window.values("pk")).values_list(
            "request__created_at", "submitted_at", "declined_at"
        )
    )
    figures = []
    for days in TURNAROUND_WINDOWS:
        start = now - timedelta(days=days)
        chosen = [row for row in rows if row[0] >= start]
        nominations = [row[3] - row[0] for row in chosen if row[3] is not None]
        completions = [row[2] - row[0] for row in chosen if row[1] == RequestStatus.COMPLETED and row[2] is not None]
        nominated = [(submitted, declined) for created, submitted, declined in references if created >= start]
        answered = sum(1 for submitted, declined in nominated if submitted or declined)
        declines = sum(1 for _, declined in nominated if declined)
        figures.append(
            Turnaround(
                days=days,
                requests=len(chosen),
                median_first_nomination=_median(nominations),
                median_completion=_median(completions),
                nominated=len(nominated),
                response_rate=answered / len(nominated) if nominated else None,
                decline_rate=declines / len(nominated) if nominated else None,
            )
        )
    return figures


def mark_report_viewed(reference_request: ReferenceRequest, user_id: int) -> None:
    """Note that the member opened the request's report (the dashboard then stops
    listing it as unread for them)."""
    ReportView.objects.update_or_create(
        request=reference_request, user_id=user_id, defaults={"viewed_at": timezone.now()}
    )
