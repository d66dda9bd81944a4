"""Template helpers for the candidate pages and the navigation."""

from __future__ import annotations

from django import template

from vouch.accounts import policy
from vouch.accounts.policy import Action

register = template.Library()


@register.filter
def may_view_candidates(membership) -> bool:
    """Whether the nav should offer the candidates (the view checks again)."""
    return policy.can(membership, Action.VIEW_CANDIDATES)


@register.filter
def may_view_questionnaires(membership) -> bool:
    return policy.can(membership, Action.VIEW_QUESTIONNAIRES)


@register.filter
def scale_points(scale) -> range:
    """The points of a rating scale, for the preview (versions are validated: ints)."""
    try:
        return range(int(scale["min"]), int(scale["max"]) + 1)
    except (KeyError, TypeError, ValueError):
        return range(0)
