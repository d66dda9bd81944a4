"""What the reference-check workflow tells the layers above it (docs/development/architecture.md, Layers).

The workflow sits below the apps that act on its moves (vouch.webhooks tells a
company's systems of them), so it sends :data:`workflow_event` rather than import them;
each connects its receiver in its AppConfig.ready().

Sent *inside* the transaction of the change, with ``send``: a receiver records what it
must do in the same company database, so the change and its consequences commit or
roll back together (a process killed just after the commit loses nothing), and sends
nothing until the commit. A receiver must not fail the change: it keeps its own work in
a savepoint and logs what goes wrong."""

from __future__ import annotations

import uuid

from django.dispatch import Signal

from vouch.core.context import current

# A move of the workflow: company_id (the current company), type (one of EVENT_TYPES),
# request_id, reference_id and flag_id (ids or None) and status (the request's status,
# or the reference's for reference events). Ids and statuses only: no personal data.
workflow_event = Signal()

EVENT_TYPES = (
    "request.created",
    "candidate.nominated",
    "reference.completed",
    "reference.declined",
    "request.completed",
    "request.expired",
    "request.cancelled",
    "flag.raised",
)


def emit(
    type: str,
    *,
    request_id: uuid.UUID | str,
    status: str,
    reference_id: uuid.UUID | str | None = None,
    flag_id: uuid.UUID | int | str | None = None,
) -> None:
    """Send :data:`workflow_event` for the current company (call inside the change's transaction)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown workflow event {type!r}")
    workflow_event.send(
        sender=type,
        company_id=current().company_id,
        type=type,
        request_id=str(request_id),
        reference_id=str(reference_id) if reference_id is not None else None,
        flag_id=str(flag_id) if flag_id is not None else None,
        status=str(status),
    )
