"""The requests dashboard: which requests a page shows, found without decrypting.

Filters use plain columns (status, creator, open flags, creation time). The search
box looks a candidate up through blind indexes only: a whole email address through
``Candidate.email_index``, otherwise every word of a name through ``SearchTerm``
(a candidate matches when all the typed words are words of their name). Nothing is
decrypted to filter; only the 25 rows shown are opened.

Callers pass the queryset the member may see (``request_access.visible_requests``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from uuid import UUID

from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from vouch.references.models import Candidate
from vouch.references.request_models import ReferenceRequest, RequestStatus, SearchTerm
from vouch.vault.fields import blind_index
from vouch.vault.normalise import NORMALISERS

PER_PAGE = 25
MAX_PAGE = 100_000
# Newest first; the ids break ties, so pages never overlap (request_created_idx and
# request_creator_created_idx hold this order).
ORDER = ("-created_at", "-id")
# From this many rows in, a page is read through a subquery of its ids (see dashboard_page):
# an OFFSET join costs about a microsecond per skipped row, the subquery's extra SQL about
# as much as 500 of them.
DEEP_OFFSET = 500
# More words than a name has would only ever find nobody, at the cost of more hashing.
MAX_SEARCH_WORDS = 8

# What the dashboard shows of a request and its candidate; nothing else is read.
LIST_COLUMNS = (
    "id",
    "created_at",
    "created_by_id",
    "role",
    "status",
    "references_completed",
    "referees_required",
    "open_flags",
    "deadline",
    "candidate__id",
    "candidate__name",
)


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
    rows_html: SafeString = field(default_factory=SafeString)  # the table's rows (``rows_html``)

    @property
    def summary(self) -> str:
        """ "26–50 of 10,000" (or "0 requests")."""
        count = self.page.paginator.count
        if not count:
            return "0 requests"
        return f"{self.page.start_index():,}–{self.page.end_index():,} of {count:,}"


_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day(moment: datetime) -> str:
    """ "5 Mar 2027" (UTC, as stored); two per row, so without strftime."""
    moment = moment.astimezone(UTC)
    return f"{moment.day} {_MONTHS[moment.month]} {moment.year}"


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search_kind(query: str) -> str | None:
    query = query.strip()
    if not query:
        return None
    return "email" if "@" in query else "name"


def matching_candidates(query: str) -> QuerySet[Candidate] | QuerySet[SearchTerm] | None:
    """A subquery of the ids of candidates the query finds, through blind indexes
    only; None when the query cannot find anyone."""
    kind = search_kind(query)
    if kind == "email":
        index = blind_index("email", query)
        if index is None:
            return None
        return Candidate.objects.filter(email_index=index).values("pk")
    if kind == "name":
        words = {word for word in NORMALISERS["name"](query).split() if word}
        if not words or len(words) > MAX_SEARCH_WORDS:
            return None
        terms = {blind_index("name", word) for word in words}
        if len(terms) == 1:
            return SearchTerm.objects.filter(term=terms.pop()).values("candidate_id")
        # A candidate has each term at most once (a unique constraint), so counting
        # the rows that matched says whether every word did.
        return (
            SearchTerm.objects.filter(term__in=terms)
            .values("candidate_id")
            .annotate(matched=Count("term"))
            .filter(matched=len(terms))
            .values("candidate_id")
        )
    return None


def filtered(requests: QuerySet[ReferenceRequest], filters: Filters) -> QuerySet[ReferenceRequest]:
    """``requests`` narrowed by the filters, newest first; no joins (so counting is
    one table), the candidate search as an ``IN`` subquery on indexed columns."""
    if filters.status:
        requests = requests.filter(status=filters.status)
    if filters.recruiter:
        requests = requests.filter(created_by_id=filters.recruiter)
    if filters.flagged:
        requests = requests.filter(open_flags__gt=0)
    if filters.created_from:
        requests = requests.filter(created_at__gte=_start_of(filters.created_from))
    if filters.created_to:
        requests = requests.filter(created_at__lt=_start_of(filters.created_to + timedelta(days=1)))
    if filters.query:
        candidates = matching_candidates(filters.query)
        if candidates is None:
            return requests.none()
        requests = requests.filter(candidate_id__in=candidates)
    return requests.order_by(*ORDER)


def page_number(raw: str) -> int:
    """A page number from the URL; anything odd is page 1 (never an error)."""
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 6:
        return min(int(raw), MAX_PAGE)
    return 1


def dashboard_page(
    requests: QuerySet[ReferenceRequest], filters: Filters, number: str, members: dict[int, str]
) -> DashboardPage:
    """One page of the dashboard. ``members`` names the company's members by user id
    (one control-database query made by the caller); creators no longer in the
    company are looked up in one more query, only when the page shows any."""
    matching = filtered(requests, filters).select_related("candidate").only(*LIST_COLUMNS)
    page = Paginator(matching, PER_PAGE).get_page(page_number(number))
    bottom = (page.number - 1) * PER_PAGE
    if bottom < DEEP_OFFSET:
        rows = list(page.object_list)  # an empty page ([0:0]) asks the database nothing
    else:
        # Deep pages pick their ids from the index alone, then read only those rows with
        # their candidates: the plain query joins every row its OFFSET skips.
        ids = matching.values("pk")[bottom : bottom + PER_PAGE]
        rows = list(requests.filter(pk__in=ids).select_related("candidate").only(*LIST_COLUMNS).order_by(*ORDER))
    page.object_list = rows
    names = dict(members)
    missing = {row.created_by_id for row in rows if row.created_by_id and row.created_by_id not in names}
    if missing:
        names.update(member_names(missing))
    return DashboardPage(
        page=page,
        filters=filters,
        search_kind=search_kind(filters.query),
        names=names,
        rows_html=rows_html(rows, names),
    )


def rows_html(rows: Iterable[ReferenceRequest], names: dict[int, str]) -> SafeString:
    """The dashboard table's rows, as one string.

    Drawn here rather than in the template: 25 rows through Django's template engine (a
    lookup, localisation and escaping per value) cost more than everything else the
    page does, and an f-string costs a tenth of ``str.format`` with a dozen names. Every
    value from the database or a member goes through ``escape`` (the same escaping as
    ``{{ value }}``); the rest are numbers and dates built here."""
    labels = dict(RequestStatus.choices)
    # One reverse for the page: a request's URL differs only by its id.
    placeholder = str(UUID(int=0))
    url_start, _, url_end = escape(reverse("request_detail", args=[placeholder])).partition(placeholder)
    html = []
    for row in rows:
        pk, status = str(row.pk), str(row.status)
        requested_by = names.get(row.created_by_id)
        required, completed, flags = row.referees_required, row.references_completed, row.open_flags
        candidate = escape(str(row.candidate.name))
        flags_html = f'<span class="badge flag">{flags}</span>' if flags else "0"
        html.append(
            f'<tr id="request-{pk}">\n'
            f'  <td data-label="Candidate"><a href="{url_start}{pk}{url_end}">{candidate}</a></td>\n'
            f'  <td data-label="Role">{escape(str(row.role))}</td>\n'
            f'  <td data-label="Status"><span class="badge status-{escape(status)}">'
            f"{escape(str(labels.get(status, status)))}</span></td>\n"
            f'  <td data-label="Requested by">{escape(requested_by) if requested_by else "—"}</td>\n'
            f'  <td data-label="Progress"><progress max="{required}" value="{completed}" '
            f'aria-label="References completed"></progress>\n    {completed}/{required}</td>\n'
            f'  <td data-label="Open flags">{flags_html}</td>\n'
            f'  <td data-label="Deadline">{_day(row.deadline)}</td>\n'
            f'  <td data-label="Created">{_day(row.created_at)}</td>\n'
            "</tr>\n"
        )
    return mark_safe("".join(html))  # noqa: S308 (every value above is escaped or built here)


def options_html(choices: Iterable[tuple[object, str]], selected: str) -> SafeString:
    """``<option>`` elements for ``choices`` (value, label), ``selected`` marked, escaped:
    a select's options in one string rather than a template loop (a company may have
    many members)."""
    html = []
    for value, label in choices:
        text = escape(str(value))
        mark = " selected" if str(value) == selected else ""
        html.append(f'<option value="{text}"{mark}>{escape(str(label))}</option>')
    return mark_safe("".join(html))  # noqa: S308 (values and labels are escaped)


def member_names(user_ids) -> dict[int, str]:
    """Display names of members (control database users), in one query."""
    from vouch.accounts.models import User

    ids = {user_id for user_id in user_ids if user_id}
    if not ids:
        return {}
    return {
        pk: full_name or email
        for pk, full_name, email in User.objects.filter(pk__in=ids).values_list("pk", "full_name", "email")
    }


def company_members(company) -> dict[int, str]:
    """The company's members (active or not) by user id, for the recruiter filter and
    the names on the page: one query."""
    from vouch.accounts.models import Membership

    rows = (
        Membership.objects.filter(company=company)
        .order_by("user__full_name", "user__email")
        .values_list("user_id", "user__full_name", "user__email")
    )
    return {user_id: full_name or email for user_id, full_name, email in rows}
