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
