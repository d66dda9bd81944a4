"""Email verification links, throttled like every other guessable secret (P13).

allauth's confirmation keys are HMAC-signed, so guessing one is hopeless; still, the page
answers whether a key is valid, and P13 promises that no such oracle is open to
unlimited tries. Each client address gets growing delays after 10 invalid keys
(``vouch.guard.throttle.check_code``); the request then goes to allauth's own view."""

from __future__ import annotations

from allauth.account.models import get_emailconfirmation_model
from allauth.account.views import confirm_email as allauth_confirm_email
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vouch.guard import throttle

PURPOSE = "verify_email"


def confirm_email(request: HttpRequest, key: str) -> HttpResponse:
    try:
        throttle.check_code(request, PURPOSE)
    except throttle.Throttled as refused:
        return render(request, "guard/throttled.html", {"message": refused.messages[0]}, status=429)
    model = get_emailconfirmation_model()
    valid = len(key) <= 200 and (model.from_key(key) is not None)
    if not valid:
        throttle.code_failed(request, PURPOSE)
    return allauth_confirm_email(request, key=key)
