"""Template helpers for the dashboard: its figures, and its rows drawn in Python.

The rows of the "needs your action" lists and of the recent activity are drawn here
rather than in the template, as the requests page's rows are (``listing_html``): through
the template engine (a ``{% url %}``, a date filter and escaping per value) they were a
fifth of the page's time with 10,000 requests (`make bench`). Every value from the
database or a member goes through ``escape``, the same escaping as ``{{ value }}``;
tests/references/test_desk.py compares them with the template they replaced."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from vouch.references.desk.reads import ActionRow, RecentLine
from vouch.references.requests.listing_html import address_around_id, day_text, month_text

register = template.Library()


@register.simple_tag
def action_rows(rows: Iterable[ActionRow]) -> SafeString:
    """``<li>`` of each request of a "needs your action" list."""
    start, end = address_around_id("request_detail")
    html = []
    for row in rows:
        moment = timezone.localtime(row.closed_at or row.deadline)
        when = f"completed {day_text(moment)}" if row.closed_at else f"due {day_text(moment)}"
        html.append(f'<li><a href="{start}{row.pk}{end}">{escape(row.name)}</a> · {escape(row.role)} · {when}</li>')
    return mark_safe("\n".join(html))  # noqa: S308  (every value escaped above)


@register.simple_tag
def recent_rows(events: Iterable[RecentLine]) -> SafeString:
    """``<li>`` of each line of recent activity, with its moment and its request."""
    start, end = address_around_id("request_detail")
    html = []
    for event in events:
        html.append(
            f'<li>{_moment_html(event.at)} · <a href="{start}{event.request_id}{end}">{escape(event.name)}</a>: '
            f"{escape(event.summary)}</li>"
        )
    return mark_safe("\n".join(html))  # noqa: S308  (every value escaped above)


@register.simple_tag
def log_rows(lines: Iterable[tuple[datetime, str]]) -> SafeString:
    """``<li>`` of each of the activity log's latest lines (``activity.latest_lines``)."""
    html = []
    for moment, summary in lines:
        html.append(f"<li>{_moment_html(moment)} · {escape(summary)}</li>")
    return mark_safe("".join(html))  # noqa: S308  (every value escaped above)


def _moment_html(moment: datetime) -> str:
    """``<time>`` of a moment, as the template drew it with ``|date:'c'`` and ``|date:"j M, H:i"``
    (isoformat() is "c": ISO 8601, microseconds only when there are any)."""
    at = timezone.localtime(moment)
    return f'<time datetime="{at.isoformat()}">{month_text(at)}</time>'


@register.filter
def span(value: timedelta | None) -> str:
    """A median time as people say it: "40 minutes", "5 hours", "2.5 days"; "—" if none."""
    if value is None:
        return "—"
    hours = value.total_seconds() / 3600
    if hours < 1:
        minutes = max(1, round(hours * 60))
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if hours < 48:
        whole = round(hours)
        return f"{whole} hour{'s' if whole != 1 else ''}"
    return f"{hours / 24:.1f} days"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"
