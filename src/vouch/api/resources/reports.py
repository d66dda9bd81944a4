"""A request's report as JSON: what the report page shows (``reports.data.build_report``),
for the key's creator's view of the company. Scope ``reports:read``. (The PDF is not in
the API yet.)"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router

from vouch.accounts import policy
from vouch.accounts.policy import Action
from vouch.api.auth import need
from vouch.references.reports import data as report_data
from vouch.references.requests.access import request_or_404

router = Router()


@router.get("/{request_id}/report", response=dict[str, Any], summary="Read a request's report (reports:read)")
def read_report(request: HttpRequest, request_id: uuid.UUID):
    """The request, the candidate, each referee with their answers, identity checks and
    flags, the summaries and the timeline: the report page's content."""
    need(request, "reports:read")
    policy.require(policy.can(request.membership, Action.VIEW_REPORTS))  # type: ignore[attr-defined]
    return report_data.build_report(request_or_404(request, request_id))  # type: ignore[arg-type]
