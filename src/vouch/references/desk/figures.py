"""What the dashboard shows: counts by status, what needs the member's action, recent
activity and turnaround figures, for the requests the member sees (``Visibility``),
in the member's own view (their requests) or the company's (all they may see).

Every figure is a handful of queries on plain columns (statuses, dates, counters), so
the page's cost does not grow with the number of requests shown: tests/references/
test_desk.py holds its query count, and docs/features.md gives its time with 10,000
requests. Only the few rows listed are decrypted."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.core.cache import cache
from django.db import DatabaseError, router
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from vouch.core.context import current
from vouch.core.db import PreparedRows
from vouch.core.diskfull import StorageFull
from vouch.references.desk import reads
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
    WorkflowSettings,
)
from vouch.references.requests.access import Visibility

log = logging.getLogger("vouch.references.desk")

# A request whose deadline is this close needs a look (a nudge, or a later deadline).
NEAR_DEADLINE = timedelta(days=2)
# Rows shown per kind of action; the count says how many there are in all.
ACTION_ROWS = 5
RECENT_ROWS = 10
TURNAROUND_WINDOWS = (30, 90)
TURNAROUND_CACHE = timedelta(minutes=15)


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
    rows: list[reads.ActionRow]


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
    recent: list[reads.RecentLine] = field(default_factory=list)
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


def _waiting_since(stale: datetime) -> QuerySet[Reference]:
    """Referees of open requests who declined (and were not replaced) or have not
    answered since before ``stale`` (the replacement time ago)."""
    return Reference.objects.filter(
        Q(status=ReferenceStatus.DECLINED) | Q(status__in=OPEN_REFERENCE_STATUSES, nominated_at__lt=stale),
        request__status__in=OPEN_REQUEST_STATUSES,
    )


def _stale(settings: WorkflowSettings, now: datetime) -> datetime:
    return now - timedelta(days=settings.replace_after_days)


def referee_needs_action(settings: WorkflowSettings, now: datetime) -> Q:
    """An open request with a referee who declined or has not answered in time, as a
    condition on a few requests (the list's page of rows): one subquery."""
    return Q(pk__in=_waiting_since(_stale(settings, now)).values("request_id"))


def needs_action(settings: WorkflowSettings, user_id: int, now: datetime) -> Q:
    """Every rule of "needs your action" in one condition (the list's marker)."""
    return referee_needs_action(settings, now) | _near_deadline(now) | _high_flag() | _unread_report(user_id)


def _due_by(soon: datetime) -> Q:
    return Q(status__in=OPEN_REQUEST_STATUSES, deadline__lte=soon)


def _near_deadline(now: datetime) -> Q:
    return _due_by(now + NEAR_DEADLINE)


def _high_flag() -> Q:
    # open_flags is kept in step with the flags: only requests with any are looked into.
    # The open High flags are few (a partial index holds the unreviewed ones): read once.
    high = Flag.objects.filter(severity__gte=Severity.HIGH, reviewed_at__isnull=True)
    return Q(open_flags__gt=0) & Q(pk__in=high.values("request_id"))


def _unread_report(user_id: int) -> Q:
    read = ReportView.objects.filter(request_id=OuterRef("pk"), user_id=user_id)
    return Q(status=RequestStatus.COMPLETED) & ~Q(Exists(read))


# The rules the dashboard lists, prepared (``reads``); the late or declined referees are
# found from the referees instead (``_referee_rows``).
RULES = {
    ActionKind.HIGH_FLAG: reads.Rule(_high_flag, ("-open_flags", "deadline")),
    ActionKind.DEADLINE: reads.Rule(_due_by, ("deadline", "id"), soon=reads.SOON),
    ActionKind.UNREAD_REPORT: reads.Rule(_unread_report, ("-closed_at", "-id"), user_id=reads.USER),
}
_WAITING_REQUESTS = PreparedRows(lambda stale: _waiting_since(stale).values_list("request_id"), stale=reads.STALE)
ORDER_OF_LISTS = (ActionKind.HIGH_FLAG, ActionKind.REFEREE, ActionKind.DEADLINE, ActionKind.UNREAD_REPORT)


def action_ids(
    requests: QuerySet[ReferenceRequest], user_id: int, ids: list[UUID], settings: WorkflowSettings
) -> set[UUID]:
    """Which of ``ids`` need the member's action (the request list's marker): one query."""
    if not ids:
        return set()
    condition = needs_action(settings, user_id, timezone.now())
    return set(requests.filter(pk__in=ids).filter(condition).values_list("pk", flat=True))


def _referee_rows(requests: QuerySet[ReferenceRequest], stale: datetime) -> tuple[list[UUID], int]:
    """The first requests (and how many) with a late or declined referee. Found from
    those referees (by their status's index, joined to their open requests: few rows),
    then named by id: as a subquery or a correlated EXISTS, the database probed the
    references of every open request instead (3-8 ms with 10,000 requests on SQLite)."""
    waiting = {row[0] for row in _WAITING_REQUESTS.fetch(using=router.db_for_read(Reference), stale=stale)}
    if not waiting:
        return [], 0
    matching = requests.filter(pk__in=waiting)
    first = list(matching.order_by("deadline", "id").values_list("pk", flat=True)[:ACTION_ROWS])
    return first, len(first) if len(first) < ACTION_ROWS else matching.count()


def build(seen: Visibility, user_id: int, *, want_company: bool, now: datetime | None = None) -> Desk:
    now = now or timezone.now()
    settings = WorkflowSettings.for_reading()
    requests, mine = scope(seen, user_id, want_company=want_company)
    sees_any = seen.everything or seen.creator_id is not None
    # The view as a prepared query's parameter: None for every request, else one creator's.
    creator = None if not mine else (user_id if seen.everything else seen.creator_id)
    counts = reads.counts_by_status(creator) if sees_any else {}
    by_status = [(status, label, counts.get(status, 0)) for status, label in RequestStatus.choices]
    values: dict[str, dict[str, Any]] = {
        ActionKind.DEADLINE: {"soon": now + NEAR_DEADLINE},
        ActionKind.UNREAD_REPORT: {"user_id": user_id},
    }
    found: dict[str, tuple[list[UUID], int]] = {}
    for kind in ORDER_OF_LISTS:
        if not sees_any:
            found[kind] = [], 0
        elif kind == ActionKind.REFEREE:
            found[kind] = _referee_rows(requests, _stale(settings, now))
        else:
            rule, parameters = RULES[kind], values.get(kind, {})
            first = rule.first_ids(creator, ACTION_ROWS, **parameters)
            # Counted only when the rows fill the list: most companies have fewer.
            if len(first) < ACTION_ROWS:
                count = len(first)
            elif kind == ActionKind.UNREAD_REPORT:  # the same number, from the member's views
                count = counts.get(RequestStatus.COMPLETED, 0) - reads.viewed_completed(creator, user_id)
            else:
                count = rule.count(creator, **parameters)
            found[kind] = first, count
    rows = reads.requests_by_id(pk for first, _ in found.values() for pk in first)
    actions = [
        ActionList(kind, ACTION_TITLES[kind], count, [rows[pk] for pk in first if pk in rows])
        for kind, (first, count) in found.items()
    ]
    return Desk(
        mine=mine,
        can_choose=seen.everything,
        total=sum(counts.values()),
        by_status=by_status,
        actions=actions,
        recent=reads.recent_events(creator, RECENT_ROWS) if sees_any else [],
        turnaround=cached_turnaround(
            requests,
            "all" if not mine and seen.everything else f"member:{user_id}",
            # A new request or a change of status is a new key: the figures never lag those.
            ",".join(str(count) for _, _, count in by_status),
            now,
        ),
    )


def _middle(durations: QuerySet, count: int) -> timedelta | None:
    """The median of ``count`` durations (a queryset of one ordered duration column),
    read by the database: one or two rows at the middle, never every row."""
    if not count:
        return None
    middle = list(durations[(count - 1) // 2 : count // 2 + 1])
    values = [value if isinstance(value, timedelta) else timedelta(microseconds=value) for value in middle]
    return sum(values, timedelta()) / len(values)


def turnaround(requests: QuerySet[ReferenceRequest], now: datetime) -> list[Turnaround]:
    """For requests created in the last 30 and 90 days: the median time from the
    request to the candidate's first nomination and to completion, and of the
    referees nominated on them, how many answered (completed or declined) and how many
    declined (replaced referees count: a decline that was replaced is still one).

    Counted and ordered by the database (two aggregates, then the middle rows of each
    median), so the cost does not grow with Python work per request."""
    starts = {days: now - timedelta(days=days) for days in TURNAROUND_WINDOWS}
    requests = requests.order_by()
    with_first = requests.annotate(first=Min("references__nominated_at")).filter(first__isnull=False)
    completed = requests.filter(status=RequestStatus.COMPLETED, closed_at__isnull=False)
    nominated_any = Exists(Reference.objects.filter(request_id=OuterRef("pk")))
    sizes = requests.filter(created_at__gte=min(starts.values())).aggregate(
        **{f"requests_{days}": Count("pk", filter=Q(created_at__gte=start)) for days, start in starts.items()},
        **{
            f"nominated_{days}": Count("pk", filter=Q(created_at__gte=start) & nominated_any)
            for days, start in starts.items()
        },
        **{
            f"completed_{days}": Count(
                "pk", filter=Q(created_at__gte=start, status=RequestStatus.COMPLETED, closed_at__isnull=False)
            )
            for days, start in starts.items()
        },
    )
    referees = Reference.objects.filter(request__in=requests.values("pk")) if _narrowed(requests) else Reference.objects
    answered = Q(submitted_at__isnull=False) | Q(declined_at__isnull=False)
    rates = referees.filter(request__created_at__gte=min(starts.values())).aggregate(
        **{
            f"{name}_{days}": Count("pk", filter=Q(request__created_at__gte=start) & extra)
            for days, start in starts.items()
            for name, extra in (("nominated", Q()), ("answered", answered), ("declined", Q(declined_at__isnull=False)))
        }
    )
    figures = []
    for days, start in starts.items():
        nominated_in = with_first.filter(created_at__gte=start)
        nominations = sizes[f"nominated_{days}"]
        first_wait = (
            nominated_in.annotate(wait=F("first") - F("created_at")).order_by("wait").values_list("wait", flat=True)
        )
        completion = (
            completed.filter(created_at__gte=start)
            .annotate(wait=F("closed_at") - F("created_at"))
            .order_by("wait")
            .values_list("wait", flat=True)
        )
        nominated = rates[f"nominated_{days}"]
        figures.append(
            Turnaround(
                days=days,
                requests=sizes[f"requests_{days}"],
                median_first_nomination=_middle(first_wait, nominations),
                median_completion=_middle(completion, sizes[f"completed_{days}"]),
                nominated=nominated,
                response_rate=rates[f"answered_{days}"] / nominated if nominated else None,
                decline_rate=rates[f"declined_{days}"] / nominated if nominated else None,
            )
        )
    return figures


def cached_turnaround(requests: QuerySet[ReferenceRequest], scope: str, state: str, now: datetime) -> list[Turnaround]:
    """``turnaround`` kept for ``TURNAROUND_CACHE`` per company, view and ``state`` (the
    counts by status): medians over 30 and 90 days move slowly, and working them out
    reads every request of the period (hundreds of milliseconds with 10,000 of them),
    where the rest of the page reads a few rows. A nomination or a referee's answer that
    changes no status shows within ``TURNAROUND_CACHE``."""
    key = f"desk:turnaround:{current().company_id}:{scope}:{state}"
    figures = cache.get(key)
    if figures is None:
        figures = turnaround(requests, now)
        try:
            cache.set(key, figures, TURNAROUND_CACHE.total_seconds())
        except (StorageFull, DatabaseError, OSError):
            # Keeping them is an optimisation: a full disk (the embedded default's cache is
            # a table) or a cache that is away must not turn a page that only reads into
            # an error (tests/server/test_disk_full.py).
            log.warning("desk: the turnaround figures could not be cached")
    return figures


def _narrowed(requests: QuerySet[ReferenceRequest]) -> bool:
    """Whether ``requests`` is narrowed by a filter (one member's), not every request."""
    return bool(requests.query.where)


def mark_report_viewed(reference_request: ReferenceRequest, user_id: int) -> None:
    """Note that the member opened the request's report (the dashboard then stops
    listing it as unread for them)."""
    ReportView.objects.update_or_create(
        request=reference_request, user_id=user_id, defaults={"viewed_at": timezone.now()}
    )
