"""What each scope allows, as the policy action the key's creator must still be allowed
(P20: a key never exceeds its creator's role)."""

from __future__ import annotations

from vouch.accounts import policy
from vouch.accounts.models import Membership
from vouch.accounts.policy import Action

SCOPES: dict[str, tuple[str, Action]] = {
    "questionnaires:read": ("Read questionnaires", Action.VIEW_QUESTIONNAIRES),
    "requests:read": ("Read reference requests and their references", Action.VIEW_REQUESTS),
    "requests:write": ("Create, cancel and resend reference requests", Action.CHANGE_REQUESTS),
    "reports:read": ("Read reports (JSON and PDF)", Action.VIEW_REPORTS),
    "candidates:admin": ("Export and erase a candidate's data", Action.ERASE_CANDIDATE_DATA),
    "webhooks:manage": ("Manage webhook endpoints", Action.MANAGE_API_KEYS),
}


def allowed(membership: Membership | None) -> list[str]:
    """The scopes this member may give a key (and a key of theirs may use)."""
    return [scope for scope, (_, action) in SCOPES.items() if policy.can(membership, action)]


def within_role(membership: Membership | None, scopes: list[str]) -> bool:
    """Whether the member may still create a key with these scopes."""
    if not policy.can(membership, Action.MANAGE_API_KEYS):
        return False
    granted = set(allowed(membership))
    return all(scope in granted for scope in scopes)
