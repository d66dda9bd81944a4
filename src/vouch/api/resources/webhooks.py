"""Webhook endpoints through the API: list, create (the secret is in that answer only),
read, change, rotate the secret, delete, and one endpoint's delivery log. Scope
``webhooks:manage``; the key's creator must still be allowed to manage webhooks.

Thin over ``vouch.webhooks.services``: its rules (https only, no private addresses, the
event types, the number of endpoints) are the only ones, so the API and the pages
cannot drift apart. A refusal of those rules is a 422 problem naming the field."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError

from vouch.accounts import policy
from vouch.accounts.policy import Action
from vouch.api import pagination
from vouch.api.auth import need
from vouch.tenancy.lookups import company_object_or_404
from vouch.webhooks import services
from vouch.webhooks.models import Delivery, Endpoint

router = Router()
SCOPE = "webhooks:manage"
PAGE_MAX = 100
EVENT_TYPES_DESCRIPTION = "Any of: " + ", ".join(services.EVENT_LABELS)


class EndpointIn(Schema):
    url: str = Field(max_length=2000, description="https:// only; a public address")
    event_types: list[str] = Field(
        min_length=1, max_length=len(services.EVENT_LABELS), description=EVENT_TYPES_DESCRIPTION
    )
    description: str = Field("", max_length=services.MAX_DESCRIPTION)


class EndpointChange(Schema):
    """Only the fields sent are changed."""

    url: str | None = Field(None, max_length=2000, description="https:// only; a public address")
    event_types: list[str] | None = Field(
        None, min_length=1, max_length=len(services.EVENT_LABELS), description=EVENT_TYPES_DESCRIPTION
    )
    description: str | None = Field(None, max_length=services.MAX_DESCRIPTION)
    enabled: bool | None = Field(None, description="Switched on again, an endpoint starts afresh")


class EndpointOut(Schema):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    previous_secret_until: datetime | None = Field(description="The old secret signs too until then (a rotation)")
    created_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_...: shown in this answer only; store it now")


class SecretOut(Schema):
    secret: str = Field(description="The new whsec_ secret: shown in this answer only")
    previous_secret_until: datetime = Field(description="The old secret keeps signing beside it until then")


class DeliveryOut(Schema):
    id: str = Field(description="The message id receivers see as webhook-id")
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    response_code: int | None
    error: str
    duration_ms: int | None


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeliveryFilters(Schema):
    cursor: str | None = Field(None, max_length=300)
    limit: int = Field(50, ge=1, le=PAGE_MAX)


def _allowed(request: HttpRequest) -> None:
    need(request, SCOPE)
    policy.require(policy.can(request.membership, Action.MANAGE_WEBHOOKS))  # type: ignore[attr-defined]


def _endpoint(request: HttpRequest, endpoint_id: uuid.UUID) -> Endpoint:
    # Another company's id is a 404 here (and recorded), as on the pages.
    return company_object_or_404(request, Endpoint, pk=endpoint_id)  # type: ignore[arg-type]


def _refused(exc: services.EndpointError) -> ValidationError:
    """A service's refusal as a 422 naming the field it is about (the services raise one
    error type, with a message safe to show)."""
    message = str(exc)
    if "event type" in message:
        loc = ["body", "data", "event_types"]
    elif "at most" in message:
        loc = ["body", "data"]  # too many endpoints: the call as a whole
    else:
        loc = ["body", "data", "url"]  # the address guard (vouch.webhooks.egress)
    return ValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


def _out(endpoint: Endpoint) -> dict:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_until": endpoint.previous_secret_until,
        "created_at": endpoint.created_at,
    }


@router.get("/endpoints", response=list[EndpointOut], summary="List webhook endpoints (webhooks:manage)")
def list_endpoints(request: HttpRequest):
    _allowed(request)
    return [_out(endpoint) for endpoint in services.endpoints()]


@router.post("/endpoints", response={201: EndpointWithSecret}, summary="Add a webhook endpoint (webhooks:manage)")
def create_endpoint(request: HttpRequest, data: EndpointIn):
    """The answer holds the endpoint's signing secret: the only time it is shown."""
    _allowed(request)
    try:
        endpoint, secret = services.create_endpoint(
            url=data.url,
            event_types=data.event_types,
            description=data.description,
            actor=request.user,
            request=request,
        )
    except services.EndpointError as exc:
        raise _refused(exc) from None
    return Status(201, {**_out(endpoint), "secret": secret})


@router.get("/endpoints/{endpoint_id}", response=EndpointOut, summary="Read a webhook endpoint (webhooks:manage)")
def read_endpoint(request: HttpRequest, endpoint_id: uuid.UUID):
    _allowed(request)
    return _out(_endpoint(request, endpoint_id))


@router.patch("/endpoints/{endpoint_id}", response=EndpointOut, summary="Change a webhook endpoint (webhooks:manage)")
def change_endpoint(request: HttpRequest, endpoint_id: uuid.UUID, data: EndpointChange):
    _allowed(request)
    endpoint = _endpoint(request, endpoint_id)
    try:
        services.update_endpoint(
            endpoint,
            url=data.url,
            event_types=data.event_types,
            description=data.description,
            actor=request.user,
            request=request,
        )
    except services.EndpointError as exc:
        raise _refused(exc) from None
    if data.enabled is not None and data.enabled != endpoint.enabled:
        services.set_enabled(endpoint, data.enabled, actor=request.user, request=request)
    endpoint.refresh_from_db()
    return _out(endpoint)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response=SecretOut,
    summary="Rotate a webhook endpoint's secret (webhooks:manage)",
)
def rotate_secret(request: HttpRequest, endpoint_id: uuid.UUID):
    """A new secret, in this answer only; the old one keeps signing beside it for a day,
    so a receiver can switch without losing a message."""
    _allowed(request)
    endpoint = _endpoint(request, endpoint_id)
    secret = services.rotate_secret(endpoint, actor=request.user, request=request)
    endpoint.refresh_from_db()
    return {"secret": secret, "previous_secret_until": endpoint.previous_secret_until}


@router.delete("/endpoints/{endpoint_id}", response={204: None}, summary="Delete a webhook endpoint (webhooks:manage)")
def delete_endpoint(request: HttpRequest, endpoint_id: uuid.UUID):
    _allowed(request)
    services.delete_endpoint(_endpoint(request, endpoint_id), actor=request.user, request=request)
    return Status(204, None)


def _cursor(delivery: Delivery) -> str:
    return pagination.encode(delivery.created_at.isoformat(), delivery.sequence, delivery.pk)


def _after(cursor: str) -> Q:
    try:
        moment, sequence, pk = pagination.decode(cursor, 3)
        created, number, last = datetime.fromisoformat(moment), int(sequence), uuid.UUID(pk)
    except ValueError:
        raise ValidationError(
            [{"loc": ["query", "cursor"], "msg": "Not a cursor this API gave.", "type": "value_error"}]
        ) from None
    return (
        Q(created_at__lt=created)
        | Q(created_at=created, sequence__lt=number)
        | Q(created_at=created, sequence=number, id__lt=last)
    )


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response=DeliveryPage,
    summary="An endpoint's delivery log (webhooks:manage)",
)
def list_deliveries(request: HttpRequest, endpoint_id: uuid.UUID, filters: Query[DeliveryFilters]):
    """Newest first: each event sent to the endpoint, its status, attempts and the last
    answer's code. Pass ``next_cursor`` back as ``cursor`` for the next page."""
    _allowed(request)
    rows = services.deliveries(_endpoint(request, endpoint_id)).order_by("-created_at", "-sequence", "-id")
    if filters.cursor:
        rows = rows.filter(_after(filters.cursor))
    page, more = pagination.take(rows, filters.limit)
    return DeliveryPage(
        items=[
            DeliveryOut(
                id=row.message_id,
                event_type=row.event_type,
                status=row.status,
                attempts=row.attempts,
                created_at=row.created_at,
                last_attempt_at=row.last_attempt_at,
                next_attempt_at=row.next_attempt_at,
                response_code=row.response_code,
                error=row.error,
                duration_ms=row.duration_ms,
            )
            for row in page
        ],
        next_cursor=_cursor(page[-1]) if more and page else None,
    )
