"""The reference-check workflow: every change of a request or a reference goes through
a function here, which checks the move is allowed, records it on the timeline, keeps
the request's status and counters in step, and issues or withdraws private links.

Needs a company context (a member's request, a link's, or a task's). Member-facing
callers ask the role policy first; candidate- and referee-facing callers are behind
``links.decorators.link_required``, whose link already names the one request or
reference they may touch. Emails and background jobs are sent only once the company
database's transaction commits, so a rolled-back change never mails anyone."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.utils import dateformat, timezone

from vouch.activity import services as activity
from vouch.core.context import current
from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.references import answers as answer_rules
from vouch.references import outgoing, progress, questionnaires
from vouch.references.models import Candidate
from vouch.references.request_models import (
    ACTIVE_REFERENCE_STATUSES,
    CLOSED_REQUEST_STATUSES,
    MAX_REFEREES,
    OPEN_REFERENCE_STATUSES,
    Flag,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
    SearchTerm,
    TimelineEvent,
    WorkflowSettings,
)
from vouch.tenancy import company_db
from vouch.vault.fields import blind_index
from vouch.vault.normalise import name_words

log = logging.getLogger("vouch.references")

MAX_DEADLINE_DAYS = 365


class WorkflowError(ValueError):
    """A move the workflow does not allow; the message is safe to show the person."""


def _company():
    from vouch.tenancy.models import Company

    return Company.objects.get(pk=current().company_id)


def company_settings() -> WorkflowSettings:
    return WorkflowSettings.current()


def note(
    reference_request: ReferenceRequest, kind: str, summary: str, *, reference: Reference | None = None, actor=None
):
    """Add a line to the request's timeline."""
    return TimelineEvent.objects.create(
        request=reference_request, reference=reference, kind=kind, summary=summary, actor_id=company_db.actor_id(actor)
    )


# --- requests ------------------------------------------------------------------------


def deadline_from(value: date | datetime) -> datetime:
    """A deadline given as a day means the end of that day (UTC)."""
    if isinstance(value, datetime):
        moment = value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    else:
        moment = datetime.combine(value, time(23, 59, 59), tzinfo=UTC)
    now = timezone.now()
    if moment <= now:
        raise WorkflowError("The deadline must be in the future.")
    if moment > now + timedelta(days=MAX_DEADLINE_DAYS):
        raise WorkflowError(f"The deadline must be within {MAX_DEADLINE_DAYS} days.")
    return moment


def index_name(candidate: Candidate) -> None:
    """Keep the blind indexes of the candidate's name words in step with the name
    (``name_words``: each word, and the parts of a hyphenated or apostrophe word)."""
    words = name_words(candidate.name)
    SearchTerm.objects.filter(candidate=candidate).delete()
    SearchTerm.objects.bulk_create(
        [SearchTerm(candidate=candidate, term=blind_index("name", word)) for word in sorted(words)]  # type: ignore[misc]  # typing debt: an Optional not narrowed here
    )


def _candidate_for(name: str, email: str, phone: str, actor) -> Candidate:
    """The company's candidate with this email, or a new one."""
    existing = Candidate.objects.filter(email_index=blind_index("email", email)).first()
    if existing is not None:
        return existing
    candidate = Candidate.objects.create(name=name, email=email, phone=phone, created_by_id=company_db.actor_id(actor))
    index_name(candidate)
    return candidate


def create_request(
    *,
    actor,
    name: str,
    email: str,
    role: str,
    questionnaire: str,
    deadline: date | datetime,
    phone: str = "",
    referees_required: int = 2,
    guidance: str = "",
    work_email_required: bool = False,
) -> ReferenceRequest:
    """Create a request, issue the candidate's link and email it to them.

    ``questionnaire`` is a ``questionnaires.choices()`` value; the version it names now
    is pinned to the request for good."""
    if not 1 <= int(referees_required) <= MAX_REFEREES:
        raise WorkflowError(f"Ask for between 1 and {MAX_REFEREES} referees.")
    name, email, role = name.strip(), email.strip(), role.strip()
    if not name or not email or not role:
        raise WorkflowError("A request needs the candidate's name, their email and the role.")
    moment = deadline_from(deadline)
    with company_db.atomic():
        try:
            version = questionnaires.version_for_request(questionnaire, actor=actor)
        except LookupError:
            raise WorkflowError("Choose a questionnaire from the list.") from None
        candidate = _candidate_for(name, email, phone.strip(), actor)
        reference_request = ReferenceRequest.objects.create(
            created_by_id=company_db.actor_id(actor),
            candidate=candidate,
            role=role,
            questionnaire_version=version,
            referees_required=int(referees_required),
            guidance=guidance.strip(),
            work_email_required=work_email_required,
            deadline=moment,
            last_activity_at=timezone.now(),
        )
        note(reference_request, "request_created", f"Request created for the role {role}.", actor=actor)
        activity.log(
            "request_created", "Reference request created.", actor=actor, details={"request": str(reference_request.pk)}
        )
        send_candidate_link(reference_request, actor=actor, first=True)
    return reference_request


def send_candidate_link(reference_request: ReferenceRequest, *, actor=None, first: bool = False) -> None:
    """(Re)issue the candidate's link and email it once the change commits. A resent
    link replaces the earlier one."""
    if not reference_request.is_open:
        raise WorkflowError("This request is closed.")
    company = _company()
    token = links.reissue(company, Purpose.CANDIDATE, reference_request.pk, reference_request.deadline)
    note(
        reference_request,
        "candidate_emailed",
        "Link sent to the candidate." if first else "Link sent again to the candidate.",
        actor=actor,
    )
    request_id, company_id = reference_request.pk, company.pk
    outgoing.record("candidate_invitation", request_id, token=token)
    from vouch.references import jobs

    company_db.on_commit(lambda: jobs.schedule_for_request(company_id, request_id))


def can_delete(reference_request: ReferenceRequest) -> bool:
    return not reference_request.candidate_has_acted


def delete_request(reference_request: ReferenceRequest, *, actor) -> None:
    """Remove a request the candidate has not acted on (confirmed or nominated) yet;
    after that it can only be cancelled, so what referees said is not lost silently."""
    with company_db.atomic():
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        if not can_delete(reference_request):
            raise WorkflowError("The candidate has already acted on this request: cancel it instead.")
        links.revoke_for_subject(_company(), reference_request.pk)
        request_id = str(reference_request.pk)
        reference_request.delete()
        activity.log("request_deleted", "Reference request deleted.", actor=actor, details={"request": request_id})


def _close_references(reference_request: ReferenceRequest, status: str, now: datetime) -> None:
    company = _company()
    for reference in reference_request.references.filter(status__in=OPEN_REFERENCE_STATUSES):
        links.revoke_for_subject(company, reference.pk)
        reference.status = status
        reference.closed_at = now
        reference.save(update_fields=["status", "closed_at"])
    links.revoke_for_subject(company, reference_request.pk)


def cancel_request(reference_request: ReferenceRequest, *, actor, reason: str = "") -> None:
    with company_db.atomic():
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        if not reference_request.is_open:
            raise WorkflowError("This request is already closed.")
        now = timezone.now()
        _close_references(reference_request, ReferenceStatus.CANCELLED, now)
        reference_request.status = RequestStatus.CANCELLED
        reference_request.closed_at = now
        reference_request.save(update_fields=["status", "closed_at"])
        note(reference_request, "request_cancelled", f"Request cancelled. {reason}".strip(), actor=actor)
        activity.log(
            "request_cancelled",
            "Reference request cancelled.",
            actor=actor,
            details={"request": str(reference_request.pk)},
        )


def expire_request(reference_request: ReferenceRequest, *, now: datetime | None = None) -> bool:
    """At the deadline, an open request and its open references expire. True if it did."""
    now = now or timezone.now()
    with company_db.atomic():
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        if not reference_request.is_open or reference_request.deadline > now:
            return False
        _close_references(reference_request, ReferenceStatus.EXPIRED, now)
        reference_request.status = RequestStatus.EXPIRED
        reference_request.closed_at = now
        reference_request.save(update_fields=["status", "closed_at"])
        note(reference_request, "request_expired", "The deadline passed: open items expired.")
    return True


def change_deadline(reference_request: ReferenceRequest, deadline: date | datetime, *, actor) -> None:
    moment = deadline_from(deadline)
    with company_db.atomic():
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        if not reference_request.is_open:
            raise WorkflowError("This request is closed.")
        reference_request.deadline = moment
        reference_request.save(update_fields=["deadline"])
        company = _company()
        links.extend(company, reference_request.pk, moment)
        for reference_id in reference_request.references.filter(status__in=OPEN_REFERENCE_STATUSES).values_list(
            "pk", flat=True
        ):
            links.extend(company, reference_id, moment)
        note(
            reference_request,
            "deadline_changed",
            f"Deadline moved to {dateformat.format(moment, 'd F Y')}.",
            actor=actor,
        )
        from vouch.references import jobs

        company_id, request_id = company.pk, reference_request.pk
        company_db.on_commit(lambda: jobs.schedule_for_request(company_id, request_id))


def refresh_status(reference_request: ReferenceRequest, *, now: datetime | None = None) -> str:
    """Work out the request's status from its references, and keep its counters in
    step. Call inside the transaction that changed a reference."""
    if reference_request.status in CLOSED_REQUEST_STATUSES:
        return reference_request.status
    now = now or timezone.now()
    statuses = list(reference_request.references.values_list("status", flat=True))
    completed = statuses.count(ReferenceStatus.COMPLETED)
    active = sum(1 for status in statuses if status in ACTIVE_REFERENCE_STATUSES)
    started = any(status in (ReferenceStatus.OPENED, ReferenceStatus.IN_PROGRESS) for status in statuses)
    flags = Flag.objects.filter(request=reference_request)
    reference_request.references_completed = completed
    reference_request.flag_count = flags.count()
    reference_request.open_flags = flags.filter(reviewed_at__isnull=True).count()
    reference_request.last_activity_at = now
    if completed >= reference_request.referees_required:
        reference_request.status = RequestStatus.COMPLETED
        reference_request.closed_at = now
        # Links stay until the deadline: the candidate still sees the statuses, and the
        # referees their thank-you page; every change is refused once closed.
        note(reference_request, "request_completed", "All references are in: the request is complete.")
    elif active < reference_request.referees_required:
        reference_request.status = RequestStatus.AWAITING_CANDIDATE
    elif completed or started:
        reference_request.status = RequestStatus.IN_PROGRESS
    else:
        reference_request.status = RequestStatus.AWAITING_REFEREES
    reference_request.save(
        update_fields=["status", "closed_at", "references_completed", "flag_count", "open_flags", "last_activity_at"]
    )
    return reference_request.status


# --- the candidate -------------------------------------------------------------------


def _locked_open_request(reference_request: ReferenceRequest) -> ReferenceRequest:
    reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
    if not reference_request.is_open:
        raise WorkflowError("This request is closed.")
    return reference_request


def candidate_opened(reference_request: ReferenceRequest) -> None:
    """The first time the candidate opens their link."""
    if reference_request.candidate_opened_at is None:
        updated = ReferenceRequest.objects.filter(pk=reference_request.pk, candidate_opened_at__isnull=True).update(
            candidate_opened_at=timezone.now()
        )
        if updated:
            note(reference_request, "candidate_opened", "The candidate opened their link.")


def confirm_candidate(reference_request: ReferenceRequest, *, name: str, email: str, phone: str = "") -> None:
    """The candidate confirms (or corrects) their details."""
    name, email, phone = name.strip(), email.strip(), phone.strip()
    if not name or not email:
        raise WorkflowError("Enter your name and email.")
    with company_db.atomic():
        reference_request = _locked_open_request(reference_request)
        candidate = reference_request.candidate
        changed = [
            field
            for field, value in (("name", name), ("email", email), ("phone", phone))
            if getattr(candidate, field) != value
        ]
        for field, value in (("name", name), ("email", email), ("phone", phone)):
            setattr(candidate, field, value)
        candidate.save()
        if "name" in changed:
            index_name(candidate)
        reference_request.candidate_confirmed_at = timezone.now()
        reference_request.save(update_fields=["candidate_confirmed_at"])
        note(
            reference_request,
            "candidate_confirmed",
            "The candidate confirmed their details" + (f" (changed: {', '.join(changed)})." if changed else "."),
        )


def open_slots(reference_request: ReferenceRequest) -> int:
    """How many more referees the candidate may nominate now."""
    active = reference_request.references.filter(status__in=ACTIVE_REFERENCE_STATUSES).count()
    return max(0, reference_request.referees_required - active)


def _check_referee(reference_request: ReferenceRequest, email: str, phone: str) -> None:
    candidate = reference_request.candidate
    if blind_index("email", email) == candidate.email_index:
        raise WorkflowError("A referee cannot be you: use someone else's email address.")
    if reference_request.references.filter(
        status__in=ACTIVE_REFERENCE_STATUSES, email_index=blind_index("email", email)
    ).exists():
        raise WorkflowError("You have already nominated someone with this email address.")


def nominate(
    reference_request: ReferenceRequest,
    *,
    name: str,
    email: str,
    relationship: str,
    organisation: str,
    worked_from: str,
    worked_to: str = "",
    phone: str = "",
    replacing: Reference | None = None,
) -> Reference:
    """The candidate names a referee, who is emailed their own link. With ``replacing``,
    the new referee takes the place of one who declined or is overdue."""
    with company_db.atomic():
        reference_request = _locked_open_request(reference_request)
        if replacing is not None:
            replacing = Reference.objects.select_for_update().get(pk=replacing.pk, request=reference_request)
            if not can_replace(replacing):
                raise WorkflowError("This referee cannot be replaced.")
        elif open_slots(reference_request) < 1:
            raise WorkflowError("You have nominated all the referees this request asks for.")
        _check_referee(reference_request, email.strip(), phone.strip())
        reference = Reference.objects.create(
            request=reference_request,
            name=name.strip(),
            email=email.strip(),
            phone=phone.strip(),
            relationship=relationship,
            organisation=organisation.strip(),
            worked_from=worked_from,
            worked_to=worked_to,
        )
        company = _company()
        if replacing is not None:
            links.revoke_for_subject(company, replacing.pk)
            was = replacing.get_status_display().lower()
            if replacing.is_open:
                replacing.closed_at = timezone.now()
            replacing.status = ReferenceStatus.REPLACED
            replacing.replaced_by = reference
            replacing.save(update_fields=["status", "replaced_by", "closed_at"])
            note(
                reference_request,
                "referee_replaced",
                f"{replacing.name} ({was}) replaced by {reference.name}.",
                reference=replacing,
            )
        note(
            reference_request,
            "referee_nominated",
            f"The candidate nominated {reference.name} ({reference.get_relationship_display().lower()}).",
            reference=reference,
        )
        token = links.issue(company, Purpose.REFEREE, reference.pk, reference_request.deadline)
        note(reference_request, "referee_emailed", f"Link sent to {reference.name}.", reference=reference)
        refresh_status(reference_request)
        company_id, reference_id = company.pk, reference.pk
        outgoing.record("referee_invitation", reference_id, token=token)
        from vouch.references import jobs

        company_db.on_commit(lambda: jobs.schedule_for_reference(company_id, reference_id))
    return reference


def can_replace(reference: Reference, *, now: datetime | None = None) -> bool:
    """A declined referee, or one who has not answered within the company's
    ``replace_after_days`` of being nominated, can be replaced."""
    if reference.status == ReferenceStatus.DECLINED:
        # Replacing a declined referee adds an active one: only while a place is free
        # (the candidate may have nominated someone else in the meantime).
        return reference.replaced_by_id is None and open_slots(reference.request) > 0
    if reference.status not in OPEN_REFERENCE_STATUSES:
        return False
    now = now or timezone.now()
    return reference.nominated_at + timedelta(days=company_settings().replace_after_days) <= now


# --- the referee ---------------------------------------------------------------------


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
                note(reference.request, "referee_opened", f"{reference.name} opened their link.", reference=reference)
                refresh_status(ReferenceRequest.objects.get(pk=reference.request_id))


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
        note(reference.request, "referee_confirmed", f"{reference.name} confirmed their details.", reference=reference)


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
            note(reference.request, "referee_started", f"{reference.name} started answering.", reference=reference)
            refresh_status(reference.request)
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
        note(
            reference_request, "referee_submitted", f"{reference.name} submitted their reference.", reference=reference
        )
        refresh_status(reference_request)
        outgoing.record("reference_completed_recruiter", reference.pk)
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
        note(reference.request, "referee_declined", f"{reference.name} declined.", reference=reference)
        refresh_status(reference.request)
        reference_request = reference.request
        if reference_request.is_open:
            # The candidate's link to nominate someone else, sent with the mail below.
            token = links.issue(_company(), Purpose.CANDIDATE, reference_request.pk, reference_request.deadline)
            outgoing.record("reference_declined", reference.pk, token=token)


# --- flags ---------------------------------------------------------------------------


def review_flag(flag: Flag, *, actor, comment: str) -> None:
    comment = comment.strip()
    if not comment:
        raise WorkflowError("Add a comment saying what you checked.")
    with company_db.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk)
        if flag.reviewed_at is not None:
            raise WorkflowError("This flag has already been reviewed.")
        flag.reviewed_at = timezone.now()
        flag.reviewed_by_id = company_db.actor_id(actor)
        flag.review_comment = comment[:2000]
        flag.save(update_fields=["reviewed_at", "reviewed_by_id", "review_comment"])
        reference_request = flag.request
        reference_request.open_flags = Flag.objects.filter(request=reference_request, reviewed_at__isnull=True).count()
        reference_request.save(update_fields=["open_flags"])
        note(
            reference_request, "flag_reviewed", f"Flag reviewed: {comment[:200]}", reference=flag.reference, actor=actor
        )
        activity.log(
            "flag_reviewed",
            "Fraud flag reviewed.",
            actor=actor,
            details={"request": str(reference_request.pk), "flag": str(flag.pk)},
        )
