"""The workflow of fraud flags (see ``vouch.references.flows``): a member's review."""

from __future__ import annotations

from django.utils import timezone

from vouch.activity import services as activity
from vouch.references import flows
from vouch.references.flows import WorkflowError
from vouch.references.request_models import Flag
from vouch.tenancy import company_db


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
        flows.note(
            reference_request, "flag_reviewed", f"Flag reviewed: {comment[:200]}", reference=flag.reference, actor=actor
        )
        activity.log(
            "flag_reviewed",
            "Fraud flag reviewed.",
            actor=actor,
            details={"request": str(reference_request.pk), "flag": str(flag.pk)},
        )
