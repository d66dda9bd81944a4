"""A candidate's data on request: everything the company holds about them exported as
JSON, or erased for good (issue #5, step 11).

Needs a company context; the caller checks the role (``EXPORT_CANDIDATE_DATA``,
``ERASE_CANDIDATE_DATA``). Activity entries give ids and counts, never names: the log
outlives the erasure.

:func:`delete_requests` is the one way to remove requests with everything under them
(their stored report files and their private links included); retention reuses it."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from vouch.activity import services as activity
from vouch.activity.services import Kind
from vouch.core.context import current
from vouch.links import services as links
from vouch.links.models import Link
from vouch.references.models import Attachment, Candidate
from vouch.references.request_models import (
    Flag,
    Reference,
    ReferenceRequest,
    ReportFile,
    TimelineEvent,
    Touch,
)
from vouch.tenancy import company_db
from vouch.tenancy.models import Company

log = logging.getLogger("vouch.references")

EXPORT_FORMAT = "vouch-candidate-export/1"


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _company():
    return Company.objects.get(pk=current().company_id)


# --- export ----------------------------------------------------------------------------


def _reference(reference: Reference, questions: list[dict]) -> dict:
    answers = reference.answers or {}
    prompts = {question["id"]: question.get("prompt", "") for question in questions}
    return {
        "id": str(reference.pk),
        "status": reference.status,
        "nomination": {
            "name": reference.name,
            "email": reference.email,
            "phone": reference.phone,
            "relationship": reference.relationship,
            "organisation": reference.organisation,
            "worked_from": reference.worked_from,
            "worked_to": reference.worked_to,
            "nominated_at": _when(reference.nominated_at),
        },
        "identity": reference.identity or None,
        "answers": [
            {"question": qid, "prompt": prompts.get(qid, ""), "answer": value} for qid, value in answers.items()
        ],
        "decline_reason": reference.decline_reason,
        "opened_at": _when(reference.opened_at),
        "confirmed_at": _when(reference.confirmed_at),
        "submitted_at": _when(reference.submitted_at),
        "declined_at": _when(reference.declined_at),
        "closed_at": _when(reference.closed_at),
        "replaced_by": str(reference.replaced_by_id) if reference.replaced_by_id else None,
        "reminders_sent": reference.reminders_sent,
    }


def _request(reference_request: ReferenceRequest) -> dict:
    version = reference_request.questionnaire_version
    questions = version.questions or []
    return {
        "id": str(reference_request.pk),
        "role": reference_request.role,
        "status": reference_request.status,
        "created_at": _when(reference_request.created_at),
        "deadline": _when(reference_request.deadline),
        "closed_at": _when(reference_request.closed_at),
        "referees_required": reference_request.referees_required,
        "guidance": reference_request.guidance,
        "work_email_required": reference_request.work_email_required,
        "candidate_opened_at": _when(reference_request.candidate_opened_at),
        "candidate_confirmed_at": _when(reference_request.candidate_confirmed_at),
        "questionnaire": {"name": version.questionnaire.name, "version": version.number, "questions": questions},
        "references": [
            _reference(reference, questions) for reference in Reference.objects.filter(request=reference_request)
        ],
        "touches": [
            {
                "at": _when(touch.at),
                "by": touch.actor,
                "reference": str(touch.reference_id) if touch.reference_id else None,
                "action": touch.action,
                "ip": touch.ip,
                "device_family": touch.device_family,
            }
            for touch in Touch.objects.filter(request=reference_request)
        ],
        "flags": [
            {
                "kind": flag.kind,
                "severity": flag.get_severity_display(),
                "reference": str(flag.reference_id) if flag.reference_id else None,
                "explanation": flag.explanation,
                "raised_at": _when(flag.raised_at),
                "reviewed_at": _when(flag.reviewed_at),
                "review_comment": flag.review_comment,
            }
            for flag in Flag.objects.filter(request=reference_request)
        ],
        "timeline": [
            {"at": _when(event.at), "kind": event.kind, "summary": event.summary}
            for event in TimelineEvent.objects.filter(request=reference_request)
        ],
    }


def export_candidate(candidate: Candidate, actor=None) -> dict:
    """Everything held about the candidate in this company, as JSON-ready data; the
    export is logged (by id, with counts)."""
    reference_requests = list(
        ReferenceRequest.objects.filter(candidate=candidate).select_related("questionnaire_version__questionnaire")
    )
    data = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "company": _company().name,
        "candidate": {
            "id": str(candidate.pk),
            "name": candidate.name,
            "email": candidate.email,
            "phone": candidate.phone,
            "notes": candidate.notes,
            "created_at": _when(candidate.created_at),
        },
        "attachments": [
            {
                "id": str(attachment.pk),
                "name": attachment.original_name,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "uploaded_at": _when(attachment.uploaded_at),
            }
            for attachment in Attachment.objects.filter(candidate=candidate)
        ],
        "requests": [_request(reference_request) for reference_request in reference_requests],
    }
    activity.log(
        Kind.CANDIDATE_EXPORTED,
        "A candidate's data was exported.",
        actor=actor,
        details={
            "candidate": str(candidate.pk),
            "requests": len(reference_requests),
            "files": len(data["attachments"]),
        },
    )
    return data


# --- erasure ---------------------------------------------------------------------------


@dataclass
class Deleted:
    """What a deletion removed (counts only: they go into the activity log)."""

    requests: int = 0
    references: int = 0
    report_files: int = 0
    attachments: int = 0
    links: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def delete_requests(queryset: QuerySet[ReferenceRequest]) -> Deleted:
    """Delete these requests with everything under them: references, touches, flags,
    timeline, the stored report PDF (its encrypted file removed once the deletion
    commits) and every private link to the request or its referees (revoked at once,
    then removed from the token index). Logs nothing: callers log what they did.

    The links are withdrawn first, in the control database: if the company database
    then fails, nobody can reach a half-deleted request, and a retry finishes the job."""
    request_ids = list(queryset.values_list("pk", flat=True))
    if not request_ids:
        return Deleted()
    reference_ids = list(Reference.objects.filter(request_id__in=request_ids).values_list("pk", flat=True))
    subjects = [*request_ids, *reference_ids]
    company = _company()
    for subject in subjects:
        links.revoke_for_subject(company, subject)
    storage = ReportFile._meta.get_field("file").storage
    with company_db.atomic():
        names = [
            name
            for name in ReportFile.objects.filter(request_id__in=request_ids).values_list("file", flat=True)
            if name
        ]
        removers = [storage.remover(name) for name in names]  # type: ignore[attr-defined]  # an attribute set at run time
        # References point at each other (replaced_by); clear that first so the
        # cascade never meets a row it has already removed.
        Reference.objects.filter(request_id__in=request_ids).update(replaced_by=None)
        ReferenceRequest.objects.filter(pk__in=request_ids).delete()

        def remove_files() -> None:
            for remove in removers:
                try:
                    remove()
                except Exception:  # one that fails (the bucket out) must not keep the rest
                    log.exception("a deleted report's stored file could not be removed")

        transaction.on_commit(remove_files, using=router.db_for_write(ReferenceRequest), robust=True)
    removed_links, _ = Link.objects.filter(company=company, subject_id__in=subjects).delete()
    return Deleted(
        requests=len(request_ids), references=len(reference_ids), report_files=len(names), links=removed_links
    )


def _normalised_name(value: str) -> str:
    return re.sub(r"\s+", " ", (value or "").strip()).casefold()


def name_confirms(candidate: Candidate, typed: str) -> bool:
    """Whether what was typed is the candidate's name (case and spacing aside)."""
    return bool(typed.strip()) and _normalised_name(typed) == _normalised_name(candidate.name)


def erasure_counts(candidate: Candidate) -> Deleted:
    """What :func:`erase_candidate` would remove, for the confirmation page."""
    reference_requests = ReferenceRequest.objects.filter(candidate=candidate)
    return Deleted(
        requests=reference_requests.count(),
        references=Reference.objects.filter(request__in=reference_requests).count(),
        report_files=ReportFile.objects.filter(request__in=reference_requests).count(),
        attachments=Attachment.objects.filter(candidate=candidate).count(),
    )


def erase_candidate(candidate: Candidate, actor=None) -> Deleted:
    """Erase the candidate and everything held about them in this company: their
    requests (with :func:`delete_requests`), their attachments and files, their name's
    search terms. Logged with counts only."""
    candidate_id = str(candidate.pk)
    deleted = delete_requests(ReferenceRequest.objects.filter(candidate=candidate))
    with company_db.atomic():
        # Requests made since the first pass (none normally) go too, inside the lock.
        Candidate.objects.select_for_update().filter(pk=candidate.pk).first()
        late = ReferenceRequest.objects.filter(candidate_id=candidate.pk)
        if late.exists():
            more = delete_requests(late)
            deleted.requests += more.requests
            deleted.references += more.references
            deleted.report_files += more.report_files
            deleted.links += more.links
        deleted.attachments = Attachment.objects.filter(candidate_id=candidate.pk).count()
        # Attachments' files are removed once this commits (references.receivers).
        Candidate.objects.filter(pk=candidate.pk).delete()
        activity.log(
            Kind.CANDIDATE_ERASED,
            "A candidate's data was erased.",
            actor=actor,
            details={"candidate": candidate_id, **deleted.as_dict()},
        )
    log.info("candidate %s erased: %s", candidate_id, deleted.as_dict())
    return deleted
