"""Template helpers for the security event pages and the navigation."""

from __future__ import annotations

from django import template

from vouch.accounts import policy
from vouch.accounts.policy import Action

register = template.Library()


@register.filter
def may_view_security_events(membership) -> bool:
    """Whether the nav should offer the company's security events (the view checks again)."""
    return policy.can(membership, Action.VIEW_SECURITY_EVENTS)
