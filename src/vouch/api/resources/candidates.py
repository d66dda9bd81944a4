"""A candidate's data exported or erased on request (scope ``candidates:admin``; the key's
creator must be an admin or owner). The work is ``privacy.candidate_data``'s, as on the
member pages, and each is a security event (``data_export``, ``data_erased``) counted by the
abuse rules (P18)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import ValidationError

from vouch.accounts import policy
from vouch.accounts.policy import Action
from vouch.api.auth import need
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.references.privacy import candidate_data as privacy
from vouch.references.requests.access import candidate_or_404

router = Router()
SCOPE = "candidates:admin"


class EraseIn(Schema):
    confirm_name: str = Field(max_length=400, description="The candidate's name exactly as stored, to confirm")


class Erased(Schema):
    requests: int
    references: int
    attachments: int
    report_files: int


@router.post("/{candidate_id}/export", response=dict[str, Any], summary="Export a candidate's data (candidates:admin)")
def export_candidate(request: HttpRequest, candidate_id: uuid.UUID):
    """Everything the company holds about the candidate, as the member page's export."""
    need(request, SCOPE)
    policy.require(policy.can(request.membership, Action.EXPORT_CANDIDATE_DATA))  # type: ignore[attr-defined]
    candidate = candidate_or_404(request, candidate_id)  # type: ignore[arg-type]
    data = privacy.export_candidate(candidate, actor=request.user)
    record(EventAction.DATA_EXPORT, request=request, target=f"candidate:{candidate.pk}", details={"kind": "candidate"})
    return data


@router.post("/{candidate_id}/erase", response=Erased, summary="Erase a candidate's data (candidates:admin)")
def erase_candidate(request: HttpRequest, candidate_id: uuid.UUID, data: EraseIn):
    """Erases the candidate, their requests, referees and files for good. ``confirm_name``
    must be the candidate's name (as on the member page), so an id alone erases nothing."""
    need(request, SCOPE)
    policy.require(policy.can(request.membership, Action.ERASE_CANDIDATE_DATA))  # type: ignore[attr-defined]
    candidate = candidate_or_404(request, candidate_id)  # type: ignore[arg-type]
    if not privacy.name_confirms(candidate, data.confirm_name):
        raise ValidationError(
            [
                {
                    "loc": ["body", "confirm_name"],
                    "msg": "Not the candidate's name: nothing was erased.",
                    "type": "invalid",
                }
            ]
        )
    deleted = privacy.erase_candidate(candidate, actor=request.user)
    record(EventAction.DATA_ERASED, request=request, target=f"candidate:{candidate_id}", details=deleted.as_dict())
    return Erased(
        requests=deleted.requests,
        references=deleted.references,
        attachments=deleted.attachments,
        report_files=deleted.report_files,
    )
