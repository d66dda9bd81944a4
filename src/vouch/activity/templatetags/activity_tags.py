"""Template helpers for the activity log pages and the navigation."""

from __future__ import annotations

from django import template

from vouch.accounts import policy
from vouch.accounts.policy import Action
from vouch.activity import services

register = template.Library()


@register.filter
def may_view_activity(membership) -> bool:
    """Whether the nav should offer the activity log (the view checks again)."""
    return policy.can(membership, Action.VIEW_ACTIVITY)


@register.filter
def activity_label(action: str) -> str:
    return services.label(action)
