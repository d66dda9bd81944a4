"""Template helpers for the candidate page's export and erasure buttons."""

from __future__ import annotations

from django import template

from vouch.accounts import policy
from vouch.accounts.policy import Action

register = template.Library()


@register.filter
def may_export_candidate(membership) -> bool:
    """Whether to offer the export (the view checks again)."""
    return policy.can(membership, Action.EXPORT_CANDIDATE_DATA)


@register.filter
def may_erase_candidate(membership) -> bool:
    return policy.can(membership, Action.ERASE_CANDIDATE_DATA)
