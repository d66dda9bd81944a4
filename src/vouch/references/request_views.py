"""Reference request pages: the dashboard list, new requests (one, or many from a paste or
CSV), a request's page with its timeline, and its changes (cancel, delete, resend,
deadline). Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action


@company_action(Action.VIEW_REQUESTS)
def request_list(request):
    raise Http404


@company_action(Action.CREATE_REQUEST)
def request_new(request):
    raise Http404


@company_action(Action.CREATE_REQUEST)
def request_bulk(request):
    raise Http404


@company_action(Action.VIEW_REQUESTS)
def request_detail(request, request_id):
    raise Http404


@company_action(Action.CHANGE_REQUESTS)
def request_cancel(request, request_id):
    raise Http404


@company_action(Action.CHANGE_REQUESTS)
def request_delete(request, request_id):
    raise Http404


@company_action(Action.CHANGE_REQUESTS)
def request_resend(request, request_id):
    raise Http404


@company_action(Action.CHANGE_REQUESTS)
def request_deadline(request, request_id):
    raise Http404
