"""The company's workflow settings. Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action


@company_action(Action.MANAGE_WORKFLOW)
def workflow_settings(request):
    raise Http404
