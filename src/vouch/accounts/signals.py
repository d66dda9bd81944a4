"""Signals of vouch.accounts for the layers above it (docs/development/architecture.md, Layers)."""

from __future__ import annotations

from django.dispatch import Signal

# A member change for the company's activity log (an invitation sent, accepted or
# withdrawn; a role changed; a member deactivated or reactivated), sent with company,
# action (a vouch.activity.services.Kind value), summary, actor and details.
# vouch.activity writes the entry once the control-database transaction commits
# (vouch.activity.receivers): it is a layer above vouch.accounts and vouch.access, so
# they tell it through this signal rather than import it.
member_activity = Signal()
