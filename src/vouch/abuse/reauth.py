"""The re-authentication response: every session of the account must confirm its
password (or a 2FA method) again before its next sensitive action: the views behind
``vouch.accounts.decorators.reauthentication_required`` (exports, erasures, roles,
sessions) ask for it through allauth's re-authentication flow. ``demanded`` is the
check that decorator runs (registered in ``AbuseConfig.ready``)."""

from __future__ import annotations

from datetime import timedelta

from allauth.account.internal.flows.login import get_authentication_records
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from vouch.abuse.models import ReauthDemand


def demand(user_id: int, rule: str) -> None:
    now = timezone.now()
    ReauthDemand.objects.update_or_create(user_id=user_id, defaults={"since": now, "rule": rule})
    # Every session alive now began after an older demand (sessions end SESSION_MAX_SECONDS
    # after sign-in at the latest): those demands are met.
    ReauthDemand.objects.filter(since__lt=now - timedelta(seconds=settings.SESSION_MAX_SECONDS)).delete()


def demanded(request: HttpRequest) -> bool:
    """Whether this session must confirm the password before going on: a demand stands
    and the session has not authenticated (signed in or confirmed) since it was made."""
    user = request.user
    if user.pk is None:
        return False
    since = ReauthDemand.objects.filter(user_id=user.pk).values_list("since", flat=True).first()
    if since is None:
        return False
    records = get_authentication_records(request, user)
    latest = max((float(entry.get("at") or 0) for entry in records), default=0.0)
    return latest <= since.timestamp()
