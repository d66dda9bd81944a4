"""allauth's login view, answering a throttled attempt cheaply.

A refused guess is decided before any password hash (vouch.guard.throttle); answering
it with the full sign-in page would still cost about as much Python as a signed-in
page, so a flood of refused guesses would crowd out everyone else's requests. A
throttled attempt gets a small static page instead, with status 429 and Retry-After.
It is the same for every address typed, registered or not, so it reveals nothing
about which accounts exist."""

from __future__ import annotations

from allauth.account.views import LoginView as AllauthLoginView
from django.forms.forms import NON_FIELD_ERRORS  # type: ignore[attr-defined]  # present in Django 5.2, missing from its stubs
from django.http import HttpResponse
from django.template.loader import render_to_string

from vouch.guard.throttle import Throttled


class LoginView(AllauthLoginView):
    def form_invalid(self, form) -> HttpResponse:
        refused = next((e for e in form.errors.as_data().get(NON_FIELD_ERRORS, []) if isinstance(e, Throttled)), None)
        if refused is None:
            return super().form_invalid(form)
        response = HttpResponse(
            render_to_string("guard/throttled_login.html", {"message": refused.messages[0]}), status=429
        )
        if refused.retry_after:
            response["Retry-After"] = str(refused.retry_after)
        return response


login = LoginView.as_view()
