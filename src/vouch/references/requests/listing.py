"""The requests dashboard: which requests a page shows, found without decrypting.

Filters use plain columns (status, creator, open flags, creation time). The search
box looks a candidate up through keyed indexes only: a whole email address through
``Candidate.email_index``, otherwise the typed words of a name through
``candidates.name_index`` (each word the start of a word of the name, as the recruiter
types). Nothing is decrypted to filter; only the 25 rows shown are opened.

Callers say which requests the member may see (``requests.access.visibility``). The
page's rows are drawn as HTML by ``listing_html``, not here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.core.paginator import Page, Paginator
from django.db import router
from django.db.models import DateField, QuerySet
from django.db.models.functions import Cast

from vouch.accounts import user_service
from vouch.core.db import PreparedRows, count_rows
from vouch.references.candidates.name_index import candidates_named, has_short_word
from vouch.references.models import Candidate
from vouch.references.request_models import ReferenceRequest
from vouch.references.requests.access import Visibility, prepared_per_view
from vouch.vault.fields import blind_index

PER_PAGE = 25
MAX_PAGE = 100_000
# Newest first; the ids break ties, so pages never overlap (request_created_idx and
# request_creator_created_idx hold this order).
ORDER = ("-created_at", "-id")
# From this many rows in, a page is read through a subquery of its ids (see dashboard_page):
# an OFFSET join costs about a microsecond per skipped row, the subquery's extra SQL about
# as much as 500 of them.
DEEP_OFFSET = 500

# What the dashboard shows of a request and its candidate, as value rows (no model
# instances: building 50 of them per page cost more than reading the rows); nothing
# else is read. The two encrypted values are opened by their fields (``listing_html.rows_html``).
# The two moments are shown as days, so they are read as dates: the database's own
# date() of the stored UTC value (Django's connections use UTC), where turning 50
# timestamps a page into aware datetimes cost 7% of the page.
ROW_COLUMNS = (
    "id",
    Cast("created_at", DateField()),
    "created_by_id",
    "role",
    "status",
    "references_completed",
    "referees_required",
    "open_flags",
    Cast("deadline", DateField()),
    "candidate_id",
    "candidate__name",
)
_CREATED_BY = ROW_COLUMNS.index("created_by_id")


@dataclass
class Filters:
    """What the dashboard's form asked for (all optional)."""

    status: str = ""
    recruiter: int | None = None
    flagged: bool = False
    created_from: date | None = None
    created_to: date | None = None
    query: str = ""

    @property
    def active(self) -> bool:
        return bool(self.status or self.recruiter or self.flagged or self.created_from or self.created_to or self.query)


@dataclass
class DashboardPage:
    page: Page
    filters: Filters
    search_kind: str | None  # "email", "name", or None when there is no search
    names: dict[int, str] = field(default_factory=dict)  # member user id -> display name

    @property
    def short_word(self) -> bool:
        """Whether the typed name has a word matched only as a whole word (under 3 characters)."""
        return self.search_kind == "name" and has_short_word(self.filters.query)

    @property
    def summary(self) -> str:
        """ "26–50 of 10,000" (or "0 requests")."""
        count = self.page.paginator.count
        if not count:
            return "0 requests"
        return f"{self.page.start_index():,}–{self.page.end_index():,} of {count:,}"


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search_kind(query: str) -> str | None:
    query = query.strip()
    if not query:
        return None
    return "email" if "@" in query else "name"


def matching_candidates(query: str) -> QuerySet | None:
    """A subquery of the ids of candidates the query finds, through blind indexes
    only; None when the query cannot find anyone."""
    kind = search_kind(query)
    if kind == "email":
        index = blind_index("email", query)
        if index is None:
            return None
        return Candidate.objects.filter(email_index=index).values("pk")
    if kind == "name":
        return candidates_named(query)
    return None


def filtered(reference_requests: QuerySet[ReferenceRequest], filters: Filters) -> QuerySet[ReferenceRequest]:
    """``requests`` narrowed by the filters, newest first; no joins (so counting is
    one table), the candidate search as an ``IN`` subquery on indexed columns."""
    if filters.status:
        reference_requests = reference_requests.filter(status=filters.status)
    if filters.recruiter:
        reference_requests = reference_requests.filter(created_by_id=filters.recruiter)
    if filters.flagged:
        reference_requests = reference_requests.filter(open_flags__gt=0)
    if filters.created_from:
        reference_requests = reference_requests.filter(created_at__gte=_start_of(filters.created_from))
    if filters.created_to:
        reference_requests = reference_requests.filter(created_at__lt=_start_of(filters.created_to + timedelta(days=1)))
    if filters.query:
        candidates = matching_candidates(filters.query)
        if candidates is None:
            return reference_requests.none()
        reference_requests = reference_requests.filter(candidate_id__in=candidates)
    return reference_requests.order_by(*ORDER)


def page_number(raw: str) -> int:
    """A page number from the URL; anything odd is page 1 (never an error)."""
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 6:
        return min(int(raw), MAX_PAGE)
    return 1


def dashboard_page(seen: Visibility, filters: Filters, number: str, members: dict[int, str]) -> DashboardPage:
    """One page of the dashboard, of the requests ``seen`` lets the member see.
    ``members`` names the company's members by user id (one control-database query
    made by the caller); creators no longer in the company are looked up in one more
    query, only when the page shows any."""
    if filters.active or not (seen.everything or seen.creator_id is not None):
        source: _FilteredRows | _PreparedRows = _FilteredRows(seen.of(ReferenceRequest.objects.all()), filters)
    else:
        source = _PreparedRows(router.db_for_read(ReferenceRequest), seen.creator_id)
    page = Paginator(source, PER_PAGE).get_page(page_number(number))  # type: ignore[arg-type, var-annotated]  # typing debt
    rows = page.object_list
    names = dict(members)
    creators = {row[_CREATED_BY] for row in rows}
    missing = {creator for creator in creators if creator and creator not in names}
    if missing:
        names.update(user_service.member_names(missing))
    return DashboardPage(
        page=page,
        filters=filters,
        search_kind=search_kind(filters.query),
        names=names,
    )


class _FilteredRows:
    """The rows a filtered dashboard shows, through the ORM (the filters make too many
    different queries to prepare each); a ``Paginator``'s object list."""

    def __init__(self, reference_requests: QuerySet[ReferenceRequest], filters: Filters) -> None:
        self._requests = reference_requests
        self._matching = filtered(reference_requests, filters)

    def count(self) -> int:
        return self._matching.count()

    def __getitem__(self, window: slice) -> list[tuple]:
        if window.start < DEEP_OFFSET:
            return list(self._matching.values_list(*ROW_COLUMNS)[window])
        # Deep pages pick their ids from the index alone, then read only those rows with
        # their candidates: the plain query joins every row its OFFSET skips.
        ids = self._matching.values("pk")[window]
        return list(self._requests.filter(pk__in=ids).order_by(*ORDER).values_list(*ROW_COLUMNS))


# The dashboard as first opened and paged through (no filter), for everyone or for one
# creator: its SQL compiled once per engine (vouch.core.db). Compiling the
# page's and the count's querysets was a quarter of the page's time.
_DEEP_IDS = tuple(uuid.UUID(int=0x5E171E1 + i) for i in range(PER_PAGE))
_PAGE = prepared_per_view(
    lambda reference_requests: reference_requests.order_by(*ORDER).values_list(*ROW_COLUMNS), paged=True
)
_IDS = prepared_per_view(lambda reference_requests: reference_requests.order_by(*ORDER).values_list("pk"), paged=True)
_COUNT = prepared_per_view(lambda reference_requests: reference_requests.order_by().values_list(count_rows()))
_ROWS_BY_IDS = PreparedRows(
    lambda **ids: ReferenceRequest.objects.filter(pk__in=list(ids.values())).order_by(*ORDER).values_list(*ROW_COLUMNS),
    **{f"id{i}": value for i, value in enumerate(_DEEP_IDS)},  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
)


class _PreparedRows:
    """The unfiltered dashboard's rows and count, through prepared SQL; a
    ``Paginator``'s object list. ``creator``: only that member's requests."""

    def __init__(self, using: str, creator: int | None) -> None:
        self._using = using
        self._own = creator is not None
        self._creator = {"creator": creator} if self._own else {}

    def count(self) -> int:
        return _COUNT[self._own].fetch(using=self._using, **self._creator)[0][0]  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter

    def __getitem__(self, window: slice) -> list[tuple]:
        page = {"using": self._using, "limit": window.stop - window.start, "offset": window.start, **self._creator}
        if window.start < DEEP_OFFSET:
            return _PAGE[self._own].fetch(**page)
        # As _FilteredRows does, in two reads: the ids from the index, then their rows.
        ids = [row[0] for row in _IDS[self._own].fetch(**page)]
        if not ids:
            return []
        padded = ids + [ids[-1]] * (len(_DEEP_IDS) - len(ids))  # a repeated id matches its row once
        return _ROWS_BY_IDS.fetch(using=self._using, **{f"id{i}": value for i, value in enumerate(padded)})
