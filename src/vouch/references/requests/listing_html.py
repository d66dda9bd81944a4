"""The requests dashboard's HTML drawn in Python: its table rows, its page navigation
and its filter options, each one string.

Drawn here rather than in the template: 25 rows through Django's template engine (a
lookup, localisation and escaping per value) cost more than everything else the page
does (`make bench`, "/requests/ with 10,000 requests in one company"). Every value from
the database or a member goes through ``escape``, the same escaping as ``{{ value }}``;
tests/references/test_listing_html.py compares the rows with a Django template's
rendering of the same rows. The rows come from ``listing`` (value rows in its
``ROW_COLUMNS`` order)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime
from html import escape
from uuid import UUID

from django.core.paginator import Page
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from vouch.references.desk.status import short_line
from vouch.references.models import Candidate
from vouch.references.request_models import ReferenceRequest, RequestStatus

_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def address_around_id(url_name: str) -> tuple[str, str]:
    """A page's address escaped for HTML, before and after its one id argument: one
    ``reverse`` for every row of a list (the addresses differ only by the id)."""
    placeholder = str(UUID(int=0))
    start, _, end = escape(reverse(url_name, args=[placeholder])).partition(placeholder)
    return start, end


def day_text(day: date) -> str:
    """ "5 Mar 2027" (the date filter's "j M Y"); two per row, so without strftime."""
    return f"{day.day} {_MONTHS[day.month]} {day.year}"


def month_text(moment: datetime) -> str:
    """ "5 Mar, 14:05" (the date filter's "j M, H:i")."""
    return f"{moment.day} {_MONTHS[moment.month]}, {moment.hour:02d}:{moment.minute:02d}"


def rows_html(rows: Iterable[tuple], names: dict[int, str], marked: Collection[UUID] = ()) -> SafeString:
    """The dashboard table's rows (value rows in ``ROW_COLUMNS`` order), as one string.

    Drawn here rather than in the template: 25 rows through Django's template engine (a
    lookup, localisation and escaping per value) cost more than everything else the
    page does, and an f-string costs a tenth of ``str.format`` with a dozen names. Every
    value from the database or a member goes through ``escape`` (the same escaping as
    ``{{ value }}``); the rest are numbers and dates built here. ``marked``: the ids of
    the requests that need the member's action (``desk.figures.action_ids``)."""
    labels = dict(RequestStatus.choices)
    role_field, name_field = ReferenceRequest._meta.get_field("role"), Candidate._meta.get_field("name")
    url_start, url_end = address_around_id("request_detail")
    html = []
    for pk, created_at, created_by_id, role, status, completed, required, flags, deadline, candidate_id, name in rows:
        # Each value is bound to its own row: the role to the request, the name to the candidate.
        role, candidate = escape(str(role_field.open(role, pk))), escape(str(name_field.open(name, candidate_id)))
        action = ' <span class="badge action">Action needed</span>' if pk in marked else ""
        hint = short_line(status, completed, required)
        hint_html = f'<br><span class="hint">{escape(hint)}</span>' if hint else ""
        pk, status = str(pk), str(status)
        requested_by = names.get(created_by_id)
        flags_html = f'<span class="badge flag">{flags}</span>' if flags else "0"
        html.append(
            f'<tr id="request-{pk}">\n'
            f'  <td data-label="Candidate"><a href="{url_start}{pk}{url_end}">{candidate}</a>{action}</td>\n'
            f'  <td data-label="Role">{role}</td>\n'
            f'  <td data-label="Status"><span class="badge status-{escape(status)}">'
            f"{escape(str(labels.get(status, status)))}</span>{hint_html}</td>\n"
            f'  <td data-label="Requested by">{escape(requested_by) if requested_by else "—"}</td>\n'
            f'  <td data-label="Progress"><progress max="{required}" value="{completed}" '
            f'aria-label="References completed"></progress>\n    {completed}/{required}</td>\n'
            f'  <td data-label="Open flags">{flags_html}</td>\n'
            f'  <td data-label="Deadline">{day_text(deadline)}</td>\n'
            f'  <td data-label="Created">{day_text(created_at)}</td>\n'
            "</tr>\n"
        )
    return mark_safe("".join(html))  # noqa: S308 (every value above is escaped or built here)


def pagination_html(page: Page, querystring: str, summary: str) -> SafeString:
    """The "Newer / Page n of m / Older" navigation under the table (``querystring``:
    the filters to keep, already URL-encoded; escaped here for the attribute)."""
    keep = f"{escape(querystring)}&amp;" if querystring else ""
    newer = f'<a href="?{keep}page={page.previous_page_number()}" rel="prev">Newer</a>' if page.has_previous() else ""
    older = f'<a href="?{keep}page={page.next_page_number()}" rel="next">Older</a>' if page.has_next() else ""
    return mark_safe(  # noqa: S308 (the querystring and summary are escaped, the rest are numbers)
        f'<nav class="pagination" aria-label="Pages">\n    {newer}\n'
        f"    <span>Page {page.number} of {page.paginator.num_pages} · {escape(summary)}</span>\n"
        f"    {older}\n  </nav>"
    )


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
