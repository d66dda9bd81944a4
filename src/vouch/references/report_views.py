"""The report page of a request and its PDF. Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action


@company_action(Action.VIEW_REPORTS)
def report(request, request_id):
    raise Http404


@company_action(Action.VIEW_REPORTS)
def report_pdf(request, request_id):
    raise Http404
