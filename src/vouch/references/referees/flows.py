"""The workflow on the referee's side (see ``vouch.references.flows``): opening their
link, confirming who they are, saving and submitting answers, declining."""

from __future__ import annotations

from django.utils import timezone

from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.references import flows, signals
from vouch.references.desk import notices
from vouch.references.flows import WorkflowError
from vouch.references.mailing import outgoing
from vouch.references.referees import answers as answer_rules
from vouch.references.referees import progress
from vouch.references.request_models import NoticeEvent, Reference, ReferenceRequest, ReferenceStatus
from vouch.references.requests import flows as request_flows
from vouch.tenancy import company_db


def _locked_open_reference(reference: Reference) -> Reference:
    # The questions come in the same query; only the reference row is locked.
    reference = (
        Reference.objects.select_for_update(of=("self",))
        .select_related("request__questionnaire_version")
        .get(pk=reference.pk)
    )
    if not reference.is_open or not reference.request.is_open:
        raise WorkflowError("This reference is closed.")
    return reference


def referee_opened(reference: Reference) -> None:
    if reference.opened_at is None:
        with company_db.atomic():
            updated = Reference.objects.filter(
                pk=reference.pk, opened_at__isnull=True, status=ReferenceStatus.INVITED
            ).update(opened_at=timezone.now(), status=ReferenceStatus.OPENED)
            if updated:
                flows.note(
                    reference.request, "referee_opened", f"{reference.name} opened their link.", reference=reference
                )
                request_flows.refresh_status(ReferenceRequest.objects.get(pk=reference.request_id))


IDENTITY_FIELDS = ("job_title", "organisation", "candidate_title", "candidate_from", "candidate_to")


def confirm_referee(reference: Reference, **identity: str) -> None:
    """The referee confirms who they are and when they worked with the candidate."""
    values = {field: str(identity.get(field, "")).strip() for field in IDENTITY_FIELDS}
    if not values["job_title"] or not values["organisation"] or not values["candidate_from"]:
        raise WorkflowError("Enter your job title, your organisation and when you started working together.")
    with company_db.atomic():
        reference = _locked_open_reference(reference)
        reference.identity = values
        reference.confirmed_at = timezone.now()
        reference.save(update_fields=["identity", "confirmed_at"])
        flows.note(
            reference.request, "referee_confirmed", f"{reference.name} confirmed their details.", reference=reference
        )


def questions_of(reference: Reference) -> list[dict]:
    return reference.request.questionnaire_version.questions


def _progress(saved: dict | None, submitted: dict, cleaned: dict, errors: dict) -> dict:
    """Saved progress with a save's valid answers in it. An answer cleared in the form
    is cleared in the saved progress too; one with an error keeps its saved value."""
    answers = {**(saved or {}), **cleaned}
    for question_id in submitted:
        if question_id not in cleaned and question_id not in errors:
            answers.pop(question_id, None)
    return answers


def _save_progress_unlocked(reference: Reference, submitted: dict) -> dict[str, str] | None:
    """The usual save (a referee who has started, typing on): one compare-and-set UPDATE
    of the row as it was loaded, so the database's write lock is held for that statement
    only (on SQLite one company's saves all queue on it; see `make bench`). None when
    the row changed since it was loaded (another save, or the reference closed): then
    the locked path decides, on the row as it is now. Like that path, it leaves the
    caller's instance as it was loaded."""
    cleaned, errors = answer_rules.clean(questions_of(reference), submitted, final=False)
    answers = _progress(reference.answers, submitted, cleaned, errors)
    now = timezone.now()
    sealed = Reference._meta.get_field("answers").seal_for(reference, answers)
    return errors if progress.save_if_unchanged(reference, sealed, now) else None  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here


def save_answers(reference: Reference, submitted: dict) -> dict[str, str]:
    """Keep the referee's progress. Valid answers are saved even when others have
    errors; returns the errors by question id."""
    if reference.status == ReferenceStatus.IN_PROGRESS and reference.saved_at is not None:
        errors = _save_progress_unlocked(reference, submitted)
        if errors is not None:
            return errors
    with company_db.atomic():
        reference = _locked_open_reference(reference)
        cleaned, errors = answer_rules.clean(questions_of(reference), submitted, final=False)
        now = timezone.now()
        reference.answers = _progress(reference.answers, submitted, cleaned, errors)
        first = reference.started_at is None
        reference.started_at = reference.started_at or now
        reference.saved_at = now
        reference.status = ReferenceStatus.IN_PROGRESS
        reference.save(update_fields=["answers", "started_at", "saved_at", "status"])
        if first:
            flows.note(
                reference.request, "referee_started", f"{reference.name} started answering.", reference=reference
            )
            request_flows.refresh_status(reference.request)
    return errors


def submit_answers(reference: Reference, submitted: dict) -> dict[str, str]:
    """Final answers. Returns errors (nothing saved as final) or {} once submitted; a
    submitted reference cannot be changed."""
    with company_db.atomic():
        reference = _locked_open_reference(reference)
        if reference.confirmed_at is None:
            return {"__all__": "Confirm your details first."}
        merged = {**(reference.answers or {}), **submitted}
        cleaned, errors = answer_rules.clean(questions_of(reference), merged, final=True)
        if errors:
            return errors
        now = timezone.now()
        reference.answers = cleaned
        reference.started_at = reference.started_at or now
        reference.submitted_at = now
        reference.closed_at = now
        reference.status = ReferenceStatus.COMPLETED
        reference.save(update_fields=["answers", "started_at", "submitted_at", "closed_at", "status"])
        # The link stays valid until the deadline: it shows the thank-you page, and the
        # workflow refuses any change to a closed reference.
        reference_request = reference.request
        flows.note(
            reference_request, "referee_submitted", f"{reference.name} submitted their reference.", reference=reference
        )
        # Before the request's own status moves, so a receiver hears the reference first.
        signals.emit(
            "reference.completed", request_id=reference_request.pk, reference_id=reference.pk, status=reference.status
        )
        request_flows.refresh_status(reference_request)
        notices.notify(NoticeEvent.REFERENCE_COMPLETED, reference_request, reference=reference)
        outgoing.record("reference_completed_candidate", reference.pk)
    return {}


def decline(reference: Reference, reason: str) -> None:
    reason = reason.strip()
    if not reason:
        raise WorkflowError("Tell the candidate briefly why you are declining.")
    with company_db.atomic():
        reference = _locked_open_reference(reference)
        now = timezone.now()
        reference.status = ReferenceStatus.DECLINED
        reference.decline_reason = reason[:2000]
        reference.declined_at = now
        reference.closed_at = now
        reference.save(update_fields=["status", "decline_reason", "declined_at", "closed_at"])
        flows.note(reference.request, "referee_declined", f"{reference.name} declined.", reference=reference)
        signals.emit(
            "reference.declined", request_id=reference.request_id, reference_id=reference.pk, status=reference.status
        )
        request_flows.refresh_status(reference.request)
        reference_request = reference.request
        notices.notify(NoticeEvent.REFERENCE_DECLINED, reference_request, reference=reference)
        if reference_request.is_open:
            # The candidate's link to nominate someone else, sent with the mail below.
            token = links.issue(
                flows.current_company(), Purpose.CANDIDATE, reference_request.pk, reference_request.deadline
            )
            outgoing.record("reference_declined", reference.pk, token=token)
