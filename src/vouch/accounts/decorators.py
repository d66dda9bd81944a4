"""View decorator that routes every company page through the policy module."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect

from vouch.accounts import policy
from vouch.accounts.policy import Action


def company_action(action: Action):
    """Require a signed-in member of the current company whose role allows ``action``."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.membership is None:
                return redirect("operator_home" if request.user.is_staff else "no_company")
            policy.require(policy.can(request.membership, action))
            return view(request, *args, **kwargs)

        wrapped.vouch_action = action  # lets the tests enumerate protected views
        return wrapped

    return decorator
