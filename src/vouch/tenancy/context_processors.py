from __future__ import annotations

from django.http import HttpRequest

from vouch.accounts import policy
from vouch.accounts.policy import Action


def company(request: HttpRequest) -> dict:
    membership = getattr(request, "membership", None)
    return {
        "current_company": getattr(request, "company", None),
        "current_membership": membership,
        # For the deletion banner (web/banners.html); the views check again.
        "company_can_delete": policy.can(membership, Action.DELETE_COMPANY),
    }
