"""View decorators: every company page through the policy module; re-authentication
before changes to who can access what."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from allauth.account.adapter import get_adapter
from allauth.account.decorators import reauthentication_required as allauth_reauthentication_required
from allauth.account.internal.flows import reauthentication as reauthentication_flow
from allauth.core.exceptions import ReauthenticationRequired
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

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


# Further reasons to ask, registered by higher layers in their AppConfig.ready()
# (vouch.abuse: an account whose unusual use demands the password again).
reauthentication_checks: list[Callable[[HttpRequest], bool]] = []


def reauthentication_required(view):
    """allauth's re-authentication: unless this session confirmed the password (or a 2FA
    method) within ACCOUNT_REAUTHENTICATION_TIMEOUT, the POST is stored, nothing is
    changed, and the person is sent to confirm; allauth then replays the stored POST.

    A signed-in session alone is not enough (a session left open or stolen must not
    hand out roles). htmx requests get an HX-Redirect instead of a 302: XHR follows a
    302 silently and would swap the password page into a fragment of this one."""
    guarded = allauth_reauthentication_required(view)

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            if request.user.is_authenticated and any(check(request) for check in reauthentication_checks):
                raise ReauthenticationRequired()
            return guarded(request, *args, **kwargs)
        except ReauthenticationRequired:
            if request.headers.get("HX-Request") != "true":
                raise  # allauth's AccountMiddleware stores the POST and redirects
            # What that middleware does, answered the way htmx follows.
            methods = get_adapter().get_reauthentication_methods(request.user)
            url = methods[0]["url"] if methods else reverse("account_login")
            suspended = reauthentication_flow.suspend_request(request, url)
            response = HttpResponse()
            response["HX-Redirect"] = suspended.url
            return response

    return wrapped
