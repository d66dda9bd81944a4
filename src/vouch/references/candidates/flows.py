"""The workflow on the candidate's side (see ``vouch.references.flows``): opening their
link, confirming their details, nominating and replacing referees."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.references import flows, jobs, signals
from vouch.references.candidates import name_index
from vouch.references.flows import WorkflowError
from vouch.references.mailing import outgoing
from vouch.references.request_models import (
    ACTIVE_REFERENCE_STATUSES,
    OPEN_REFERENCE_STATUSES,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
)
from vouch.references.requests import flows as request_flows
from vouch.tenancy import company_db
from vouch.vault.fields import blind_index


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
            flows.note(reference_request, "candidate_opened", "The candidate opened their link.")


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
            name_index.index_name(candidate)
        reference_request.candidate_confirmed_at = timezone.now()
        reference_request.save(update_fields=["candidate_confirmed_at"])
        flows.note(
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
        company = flows.current_company()
        if replacing is not None:
            links.revoke_for_subject(company, replacing.pk)
            was = replacing.get_status_display().lower()
            if replacing.is_open:
                replacing.closed_at = timezone.now()
            replacing.status = ReferenceStatus.REPLACED
            replacing.replaced_by = reference
            replacing.save(update_fields=["status", "replaced_by", "closed_at"])
            flows.note(
                reference_request,
                "referee_replaced",
                f"{replacing.name} ({was}) replaced by {reference.name}.",
                reference=replacing,
            )
        flows.note(
            reference_request,
            "referee_nominated",
            f"The candidate nominated {reference.name} ({reference.get_relationship_display().lower()}).",
            reference=reference,
        )
        token = links.issue(company, Purpose.REFEREE, reference.pk, reference_request.deadline)
        flows.note(reference_request, "referee_emailed", f"Link sent to {reference.name}.", reference=reference)
        signals.emit(
            "candidate.nominated", request_id=reference_request.pk, reference_id=reference.pk, status=reference.status
        )
        request_flows.refresh_status(reference_request)
        company_id, reference_id = company.pk, reference.pk
        outgoing.record("referee_invitation", reference_id, token=token)
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
    return reference.nominated_at + timedelta(days=flows.company_settings().replace_after_days) <= now
