"""The workflow of fraud flags (see ``vouch.references.flows``): a member's review, of
one flag, of a group of them (one cause on one pair) or of all a referee's at once,
with one comment for all of them."""

from __future__ import annotations

from django.utils import timezone

from vouch.activity import services as activity
from vouch.references import flows
from vouch.references.flows import WorkflowError
from vouch.references.request_models import Flag, Reference, ReferenceRequest
from vouch.tenancy import company_db

MAX_COMMENT = 2000


def review_flag(flag: Flag, *, actor, comment: str) -> None:
    """Review one flag; refused when it is reviewed already."""
    if not review_flags(flag.request, [flag.pk], actor=actor, comment=comment):
        raise WorkflowError("This flag has already been reviewed.")


def review_flags(reference_request: ReferenceRequest, flag_ids: list, *, actor, comment: str) -> list[Flag]:
    """Mark the open ones of ``flag_ids`` (of this request only) reviewed, with one
    comment; returns those it reviewed (none when all were reviewed meanwhile). The
    timeline gets one line, the activity log one entry naming every flag."""
    comment = comment.strip()
    if not comment:
        raise WorkflowError("Add a comment saying what you checked.")
    if len(comment) > MAX_COMMENT:
        raise WorkflowError(f"Keep the comment under {MAX_COMMENT:,} characters.")
    with company_db.atomic():
        # No join in the locking query: PostgreSQL cannot lock the nullable side of one.
        flags = list(
            Flag.objects.select_for_update()
            .filter(request_id=reference_request.pk, pk__in=list(flag_ids), reviewed_at__isnull=True)
            .order_by("raised_at", "id")
        )
        if not flags:
            return []
        now, member = timezone.now(), company_db.actor_id(actor)
        Flag.objects.filter(pk__in=[flag.pk for flag in flags]).update(reviewed_at=now, reviewed_by_id=member)
        # The comment is encrypted per row by its field: saved one by one, not by update().
        for flag in flags:
            flag.reviewed_at, flag.reviewed_by_id, flag.review_comment = now, member, comment
            flag.save(update_fields=["review_comment"])
        reference_request = ReferenceRequest.objects.select_for_update().get(pk=reference_request.pk)
        reference_request.open_flags = Flag.objects.filter(request=reference_request, reviewed_at__isnull=True).count()
        reference_request.save(update_fields=["open_flags"])
        references = {flag.reference_id for flag in flags}
        only = Reference.objects.filter(pk__in=references).first() if len(references) == 1 else None
        what = "Flag reviewed" if len(flags) == 1 else f"{len(flags)} flags reviewed"
        flows.note(
            reference_request,
            "flag_reviewed",
            f"{what}: {comment[:200]}",
            reference=only,
            actor=actor,
        )
        activity.log(
            "flag_reviewed",
            "Fraud flag reviewed." if len(flags) == 1 else f"{len(flags)} fraud flags reviewed together.",
            actor=actor,
            details={
                "request": str(reference_request.pk),
                **({"flag": str(flags[0].pk)} if len(flags) == 1 else {}),
                "flags": [str(flag.pk) for flag in flags],
            },
        )
    return flags
