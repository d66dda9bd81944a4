"""Template helpers for the questionnaire pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def scale_points(scale) -> range:
    """The points of a rating scale, for the preview (versions are validated: ints)."""
    try:
        return range(int(scale["min"]), int(scale["max"]) + 1)
    except (KeyError, TypeError, ValueError):
        return range(0)
