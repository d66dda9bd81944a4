"""Reviewing fraud flags. Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action


@company_action(Action.REVIEW_FLAGS)
def flag_review(request, request_id, flag_id):
    raise Http404
