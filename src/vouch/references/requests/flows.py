"""The workflow of a request (see ``vouch.references.flows``): creating it, its
candidate's link, cancelling, deleting, expiring, moving its deadline, and working out
its status from its references."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.utils import dateformat, timezone

from vouch.activity import services as activity
from vouch.audit import observers
from vouch.core.context import current
from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.references import flows, jobs, signals
from vouch.references.candidates.name_index import index_name
from vouch.references.desk import notices
from vouch.references.flows import WorkflowError
from vouch.references.mailing import outgoing
from vouch.references.models import Candidate
from vouch.references.questionnaires import services as questionnaires
from vouch.references.request_models import (
    ACTIVE_REFERENCE_STATUSES,
    CLOSED_REQUEST_STATUSES,
    MAX_REFEREES,
    OPEN_REFERENCE_STATUSES,
    Flag,
    NoticeEvent,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
)
from vouch.tenancy import company_db
from vouch.vault.fields import blind_index

MAX_DEADLINE_DAYS = 365


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


def _candidate_for(name: str, email: str, phone: str, actor) -> Candidate:
    """The company's candidate with this email, or a new one."""
    existing = Candidate.objects.filter(email_index=blind_index("email", email)).first()
    if existing is not None:
        return existing
    candidate = Candidate.objects.create(name=name, email=email, phone=phone, created_by_id=company_db.actor_id(actor))
    index_name(candidate, new=True)
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
    external_id: str = "",
    external_url: str = "",
    in_background: bool = False,
) -> ReferenceRequest:
    """Create a request, issue the candidate's link and email it to them.

    ``questionnaire`` is a ``questionnaires.choices()`` value; the version it names now
    is pinned to the request for good. ``in_background``: the email is sent, and the
    request's tasks planned, by the background worker (one task queued once the request
    commits) rather than by this process before it answers: for the API, whose callers
    create in bulk. The email is recorded with the request either way, so neither is lost
    (``jobs.after_request_created``)."""
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
            external_id=external_id.strip(),
            external_url=external_url.strip(),
            deadline=moment,
            last_activity_at=timezone.now(),
        )
        flows.note(reference_request, "request_created", f"Request created for the role {role}.", actor=actor)
        activity.log(
            "request_created", "Reference request created.", actor=actor, details={"request": str(reference_request.pk)}
        )
        send_candidate_link(reference_request, actor=actor, first=True, in_background=in_background)
        signals.emit("request.created", request_id=reference_request.pk, status=reference_request.status)
    # Counted by the abuse rules (many requests in an hour, P18); not a security event.
    observers.heard("reference_request_created", actor_id=getattr(actor, "pk", None), company_id=current().company_id)
    return reference_request


def send_candidate_link(
    reference_request: ReferenceRequest, *, actor=None, first: bool = False, in_background: bool = False
) -> None:
    """(Re)issue the candidate's link and email it once the change commits (by the
    background worker: ``in_background``, see ``create_request``). A resent link
    replaces the earlier one."""
    if not reference_request.is_open:
        raise WorkflowError("This request is closed.")
    company = flows.current_company()
    # A request just created has no earlier link to revoke: its first is only issued.
    issue = links.issue if first else links.reissue
    token = issue(company, Purpose.CANDIDATE, reference_request.pk, reference_request.deadline)
    flows.note(
        reference_request,
        "candidate_emailed",
        "Link sent to the candidate." if first else "Link sent again to the candidate.",
        actor=actor,
    )
    request_id, company_id = reference_request.pk, company.pk
    row = outgoing.record("candidate_invitation", request_id, token=token, send_now=not in_background)
    if in_background:
        mail_id = row.pk
        company_db.on_commit(lambda: jobs.after_request_created(company_id, request_id, mail_id))
    else:
        # A new request has nothing queued yet: its tasks are queued without looking for copies.
        company_db.on_commit(lambda: jobs.schedule_for_request(company_id, request_id, new=first))


def can_delete(reference_request: ReferenceRequest) -> bool:
    return not reference_request.candidate_has_acted


def delete_request(reference_request: ReferenceRequest, *, actor) -> None:
    """Remove a request the candidate has not acted on (confirmed or nominated) yet;
    after that it can only be cancelled, so what referees said is not lost silently."""
    with company_db.atomic():
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        if not can_delete(reference_request):
            raise WorkflowError("The candidate has already acted on this request: cancel it instead.")
        links.revoke_for_subject(flows.current_company(), reference_request.pk)
        request_id = str(reference_request.pk)
        reference_request.delete()
        activity.log("request_deleted", "Reference request deleted.", actor=actor, details={"request": request_id})


def _close_references(reference_request: ReferenceRequest, status: str, now: datetime) -> None:
    company = flows.current_company()
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
        flows.note(reference_request, "request_cancelled", f"Request cancelled. {reason}".strip(), actor=actor)
        signals.emit("request.cancelled", request_id=reference_request.pk, status=reference_request.status)
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
        flows.note(reference_request, "request_expired", "The deadline passed: open items expired.")
        notices.notify(NoticeEvent.REQUEST_EXPIRED, reference_request)
        signals.emit("request.expired", request_id=reference_request.pk, status=reference_request.status)
    return True


def change_deadline(reference_request: ReferenceRequest, deadline: date | datetime, *, actor) -> None:
    moment = deadline_from(deadline)
    with company_db.atomic():
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        if not reference_request.is_open:
            raise WorkflowError("This request is closed.")
        reference_request.deadline = moment
        reference_request.save(update_fields=["deadline"])
        company = flows.current_company()
        links.extend(company, reference_request.pk, moment)
        for reference_id in reference_request.references.filter(status__in=OPEN_REFERENCE_STATUSES).values_list(
            "pk", flat=True
        ):
            links.extend(company, reference_id, moment)
        flows.note(
            reference_request,
            "deadline_changed",
            f"Deadline moved to {dateformat.format(moment, 'd F Y')}.",
            actor=actor,
        )
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
        flows.note(reference_request, "request_completed", "All references are in: the request is complete.")
        notices.notify(NoticeEvent.REQUEST_COMPLETED, reference_request)
        signals.emit("request.completed", request_id=reference_request.pk, status=RequestStatus.COMPLETED)
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
