"""Endpoints and workflow events for the webhook tests."""

from __future__ import annotations

from django.test import TestCase
from standardwebhooks.webhooks import Webhook

from vouch.core.context import company_context
from vouch.references.signals import EVENT_TYPES
from vouch.webhooks import services
from vouch.webhooks.models import Delivery, Endpoint


def add_endpoint(company, receiver, types=EVENT_TYPES, path: str = "/hooks") -> tuple[Endpoint, str]:
    with company_context(company):
        return services.create_endpoint(url=receiver.url(path), event_types=list(types), description="ATS")


def verified(received, secret: str) -> dict:
    """The payload, after the receiving side's own check of the Standard Webhooks signature."""
    return Webhook(secret).verify(received.body, received.headers)


def deliveries(company, endpoint=None) -> list[Delivery]:
    with company_context(company):
        rows = Delivery.objects.select_related("endpoint").order_by("created_at", "sequence")
        if endpoint is not None:
            rows = rows.filter(endpoint_id=endpoint.pk)
        return list(rows)


def reload(company, row):
    with company_context(company):
        row.refresh_from_db()
    return row


def event(company, type: str = "request.created", request_id: str = "0b5b5a43-6b0a-4b6a-9d1c-5c1f1e2d3a4b"):
    """A workflow event for ``company`` outside the workflow (the signal as the flows send it)."""
    from vouch.references.signals import emit

    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        from vouch.tenancy import company_db

        with company_db.atomic():
            emit(type, request_id=request_id, status="awaiting_candidate")
