"""The dashboard's reads, through SQL compiled once per database engine (vouch.core.db).

The dashboard asks a dozen small questions of the same shape every time (counts by
status, the first rows and the size of each "needs your action" list, the latest
activity); building and compiling each queryset cost more than running it (0.3-1 ms
against 0.05-0.2 ms with 10,000 requests). Prepared here for the two views that are one
query each: every request the company has, and one creator's. The rules themselves
(which request needs action) are written once, in ``figures``, as querysets; the
prepared forms run exactly that SQL, except the size of a full list of unread reports,
worked out from the member's views (``viewed_completed``). The rows and lines the page
shows are read as values, not model instances. tests/references/test_desk.py compares
each of them with the ORM's answer on the same data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

from django.db import router
from django.db.models import Count, Q

from vouch.core.db import ComposedSQL, Names, PreparedRows, count_rows
from vouch.references.models import Candidate
from vouch.references.request_models import ReferenceRequest, ReportView, RequestStatus, TimelineEvent
from vouch.references.requests.access import CREATOR_SENTINEL, prepared_per_view

# Sentinels (vouch.core.db.PreparedRows): values no real parameter has, each distinct.
SOON = datetime(1901, 1, 1, 0, 0, 0, 517_101, tzinfo=UTC)
STALE = datetime(1901, 1, 2, 0, 0, 0, 517_102, tzinfo=UTC)
USER = -0x5E171E2


class Rule:
    """One "needs your action" list: its condition (a function of its parameters, named
    like ``PreparedRows``' sentinels) and its order, prepared for its first rows and
    its size."""

    def __init__(self, condition: Callable[..., Q], order: tuple[str, ...], **sentinels: Any) -> None:
        self.condition = condition
        self.order = order
        self._ids = prepared_per_view(
            lambda requests, **values: requests.filter(condition(**values)).order_by(*order).values_list("pk"),
            paged=True,
            **sentinels,
        )
        self._count = prepared_per_view(
            lambda requests, **values: requests.filter(condition(**values)).order_by().values_list(count_rows()),
            **sentinels,
        )

    def first_ids(self, creator: int | None, limit: int, **values: object) -> list[UUID]:
        rows = self._ids[creator is not None].fetch(limit=limit, **_scope(creator), **values)  # type: ignore[arg-type]
        return [row[0] for row in rows]

    def count(self, creator: int | None, **values: object) -> int:
        return self._count[creator is not None].fetch(**_scope(creator), **values)[0][0]  # type: ignore[arg-type]


def _scope(creator: int | None) -> dict:
    """``fetch``'s keywords for the view: the database, and the creator when there is one."""
    found: dict = {"using": router.db_for_read(ReferenceRequest)}
    if creator is not None:
        found["creator"] = creator
    return found


_BY_STATUS = prepared_per_view(lambda requests: requests.order_by().values_list("status").annotate(n=Count("*")))


def counts_by_status(creator: int | None) -> dict[str, int]:
    return dict(_BY_STATUS[creator is not None].fetch(**_scope(creator)))


def _viewed_completed(names: Names, *, one_creator: bool) -> str:
    """Written by hand for its join order: SQLite, with no statistics, started from the
    completed requests (a scan of all of them) whatever the ORM's join said; a CROSS JOIN
    makes it start from the member's views (their index). PostgreSQL plans it as a join."""
    view, request = ReportView, ReferenceRequest
    creator = f" AND {names.column(request, 'created_by_id', prefix='r.')} = %s" if one_creator else ""
    return (
        f"SELECT COUNT(*) FROM {names.table(view)} v CROSS JOIN {names.table(request)} r "  # noqa: S608  (identifiers from the models)
        f"WHERE {names.column(view, 'user_id', prefix='v.')} = %s "
        f"AND {names.column(request, 'id', prefix='r.')} = {names.column(view, 'request', prefix='v.')} "
        f"AND {names.column(request, 'status', prefix='r.')} = %s{creator}"
    )


_VIEWED_COMPLETED = {
    one_creator: ComposedSQL(partial(_viewed_completed, one_creator=one_creator)) for one_creator in (False, True)
}


def viewed_completed(creator: int | None, user_id: int) -> int:
    """How many of the view's completed requests ``user_id`` has opened the report of
    (one view per member and request: a unique constraint). The completed ones less
    these are the unread reports: counted from the member's few views (an index), where
    the rule's NOT EXISTS probes every completed request (0.2 ms with 1,250 of them)."""
    params: list = [user_id, RequestStatus.COMPLETED.value] + ([] if creator is None else [creator])
    found = _VIEWED_COMPLETED[creator is not None].fetchone(params, using=router.db_for_read(ReportView))
    return found[0] if found else 0  # a COUNT always has its row


# The latest lines of activity: what a line shows, read in one prepared join without
# building instances (ten events with their requests and candidates were the costliest
# read of the page); the encrypted values are opened here, with their rows' ids.
_RECENT_COLUMNS = ("pk", "at", "summary", "request_id", "request__candidate_id", "request__candidate__name")
_RECENT = {
    False: PreparedRows(lambda: TimelineEvent.objects.order_by("-at", "-id").values_list(*_RECENT_COLUMNS), paged=True),
    True: PreparedRows(
        lambda creator: (
            TimelineEvent.objects.filter(request__created_by_id=creator)
            .order_by("-at", "-id")
            .values_list(*_RECENT_COLUMNS)
        ),
        paged=True,
        creator=CREATOR_SENTINEL,
    ),
}


class RecentLine(NamedTuple):
    """One line of recent activity: a timeline event, its request and its candidate's name."""

    pk: UUID
    at: datetime
    summary: str
    request_id: UUID
    name: str


def recent_events(creator: int | None, limit: int) -> list[RecentLine]:
    """The latest ``limit`` lines of the timelines of the view's requests, newest first."""
    rows = _RECENT[creator is not None].fetch(limit=limit, **_scope(creator))
    summary, name = TimelineEvent._meta.get_field("summary"), Candidate._meta.get_field("name")
    return [
        RecentLine(pk, at, summary.open(sealed_summary, pk), request_id, name.open(sealed_name, candidate_id))
        for pk, at, sealed_summary, request_id, candidate_id, sealed_name in rows
    ]


# The rows the four "needs your action" lists show (at most five requests each): what a
# row shows, read by id in one prepared read without building instances; the encrypted
# values are opened here, with their rows' ids.
_AT_ONCE = 20
_ID_SENTINELS: dict[str, Any] = {f"pk{n}": UUID(int=0x5E171E1 + n) for n in range(_AT_ONCE)}
_ROWS = PreparedRows(
    lambda **ids: (
        ReferenceRequest.objects.filter(pk__in=list(ids.values()))
        .order_by()
        .values_list("pk", "role", "deadline", "closed_at", "candidate_id", "candidate__name")
    ),
    **_ID_SENTINELS,
)


class ActionRow(NamedTuple):
    """One request of a "needs your action" list, as the list shows it."""

    pk: UUID
    role: str
    deadline: datetime
    closed_at: datetime | None
    name: str


def requests_by_id(ids: Iterable[UUID]) -> dict[UUID, ActionRow]:
    """The rows of these requests (those gone meanwhile left out), up to twenty a read."""
    wanted = list(dict.fromkeys(ids))
    using = router.db_for_read(ReferenceRequest)
    role, name = ReferenceRequest._meta.get_field("role"), Candidate._meta.get_field("name")
    found: dict[UUID, ActionRow] = {}
    for start in range(0, len(wanted), _AT_ONCE):
        chunk = wanted[start : start + _AT_ONCE]
        padded = chunk + [chunk[-1]] * (_AT_ONCE - len(chunk))  # a repeated id matches its row once
        values: dict[str, Any] = dict(zip(_ID_SENTINELS, padded, strict=True))
        for pk, sealed_role, deadline, closed_at, candidate_id, sealed_name in _ROWS.fetch(using=using, **values):
            found[pk] = ActionRow(
                pk, role.open(sealed_role, pk), deadline, closed_at, name.open(sealed_name, candidate_id)
            )
    return found
