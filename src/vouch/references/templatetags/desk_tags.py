"""Template helpers for the dashboard's figures."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


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
