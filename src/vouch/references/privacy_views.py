"""A candidate's data exported (JSON) or erased on request, by an admin. Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action


@company_action(Action.EXPORT_CANDIDATE_DATA)
def candidate_export(request, candidate_id):
    raise Http404


@company_action(Action.ERASE_CANDIDATE_DATA)
def candidate_erase(request, candidate_id):
    raise Http404
