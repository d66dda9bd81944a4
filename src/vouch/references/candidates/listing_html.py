"""The Candidates list's table rows drawn in Python, one string.

Drawn here rather than in the template for the same reason as the requests list's rows
(``requests.listing_html``): 50 rows through Django's template engine (a lookup,
localisation and escaping per value, a ``{% url %}`` per row) were most of the page's
time, and the page is asked for at every pause in a recruiter's typing (`make bench`,
"search as typed"). Every value goes through ``escape``, the same escaping as
``{{ value }}``; tests/references/test_candidate_rows.py compares the rows with the
template they replaced."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from vouch.references.models import Candidate
from vouch.references.requests.listing_html import address_around_id


def rows_html(candidates: Iterable[Candidate]) -> SafeString:
    """The rows of these candidates (with ``file_count`` set: ``services.count_files``)."""
    url_start, url_end = address_around_id("candidate_detail")
    html = []
    for candidate in candidates:
        pk = str(candidate.pk)
        phone = escape(candidate.phone) if candidate.phone else "—"
        added = timezone.localtime(candidate.created_at).strftime("%Y-%m-%d %H:%M")
        html.append(
            f'<tr id="candidate-{pk}">\n'
            f'  <td data-label="Name"><a href="{url_start}{pk}{url_end}">{escape(candidate.name)}</a></td>\n'
            f'  <td data-label="Email">{escape(candidate.email)}</td>\n'
            f'  <td data-label="Phone">{phone}</td>\n'
            f'  <td data-label="Files">{candidate.file_count}</td>\n'  # type: ignore[attr-defined]  # set by count_files
            f'  <td data-label="Added">{added}</td>\n'
            "</tr>\n"
        )
    return mark_safe("".join(html))  # noqa: S308 (every value above is escaped or built here)
