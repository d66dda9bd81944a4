"""What vouch.webhooks hears: the workflow's events (vouch.references.signals), and the
worker's background round (vouch.references.jobs.background_work).

An event becomes one delivery per enabled endpoint that asked for its type, recorded in
the change's own transaction (the signal is sent inside it), in a savepoint: a failure
here is logged and never fails the workflow's change. The attempts are queued once it
commits.

Payloads are thin: the event's type and time, ids, statuses and absolute links. No
name, email address, answer or free text: the receiver fetches what it needs with its
API key, under that key's scopes."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from vouch.references import jobs
from vouch.references.signals import workflow_event
from vouch.tenancy import company_db
from vouch.webhooks import delivery
from vouch.webhooks.models import Delivery, Endpoint

log = logging.getLogger("vouch.webhooks")


def payload(type: str, *, request_id: str, status: str, reference_id=None, flag_id=None, now=None) -> dict:
    """The body of an event (Standard Webhooks' type, timestamp and data)."""
    now = now or timezone.now()
    data: dict = {"request_id": request_id, "status": status}
    links = {
        "request": f"{settings.PUBLIC_URL}{reverse('request_detail', args=[request_id])}",
        # The REST API's view of the request (its reference: docs/api/webhooks.md).
        "api": f"{settings.PUBLIC_URL}/api/v1/requests/{request_id}",
    }
    if reference_id:
        data["reference_id"] = reference_id
    if flag_id:
        data["flag_id"] = flag_id
    if type == "request.completed":
        links["report"] = f"{settings.PUBLIC_URL}{reverse('request_report_pdf', args=[request_id])}"
    data["links"] = links
    return {"type": type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}


def on_workflow_event(
    sender, *, company_id, type: str, request_id: str, status: str, reference_id=None, flag_id=None, **kwargs
) -> None:
    try:
        with company_db.atomic():
            record_event(
                company_id, type, request_id=request_id, status=status, reference_id=reference_id, flag_id=flag_id
            )
    except Exception:  # noqa: BLE001 - see the module's docstring
        log.exception("could not record the webhooks of a %s event", type)


def record_event(company_id, type: str, *, request_id: str, status: str, reference_id=None, flag_id=None) -> list:
    """The deliveries of one event (in the current company's context); queued on commit."""
    targets = [
        endpoint
        for endpoint in Endpoint.objects.filter(enabled=True).only("pk", "event_types")
        if type in endpoint.event_types
    ]
    if not targets:
        return []
    now = timezone.now()
    body = payload(type, request_id=request_id, status=status, reference_id=reference_id, flag_id=flag_id, now=now)
    rows = Delivery.objects.bulk_create(
        Delivery(
            endpoint_id=endpoint.pk,
            event_type=type,
            payload=body,
            created_at=now,
            window_started_at=now,
            next_attempt_at=now,
            sequence=time.time_ns(),
        )
        for endpoint in targets
    )
    delivery.queue_round_after_commit(company_id, [row.pk for row in rows])
    return rows


def connect() -> None:
    workflow_event.connect(on_workflow_event, dispatch_uid="vouch.webhooks.workflow_event")
    jobs.background_work.append(delivery.sweep_all)
