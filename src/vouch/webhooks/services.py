"""Managing a company's webhook endpoints: the plain functions its pages (and, later,
the REST API) call. They need a company context; permissions are the caller's to check
(``vouch.accounts.policy``, ``MANAGE_SETTINGS``).

A secret is ``whsec_`` and 32 random bytes in base64, as the Standard Webhooks
specification writes it; it is shown once, when it is made, and stored encrypted with
the company's key. Rotating keeps the old secret signing beside the new one for
``ROTATION_OVERLAP``, so a receiver can switch without losing a message."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils import timezone

from vouch.audit.events import record
from vouch.audit.models import EventAction
from vouch.core.context import current
from vouch.references.signals import EVENT_TYPES
from vouch.tenancy import company_db
from vouch.webhooks import egress
from vouch.webhooks.models import Delivery, DeliveryStatus, Endpoint

ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS = 20
MAX_DESCRIPTION = 200
PER_PAGE = 50

EVENT_LABELS = {
    "request.created": "Request created",
    "candidate.nominated": "Candidate nominated a referee",
    "reference.completed": "Reference completed",
    "reference.declined": "Reference declined",
    "request.completed": "Request completed",
    "request.expired": "Request expired",
    "request.cancelled": "Request cancelled",
    "flag.raised": "Fraud flag raised",
}
assert set(EVENT_LABELS) == set(EVENT_TYPES)  # a new workflow event needs its label here


class EndpointError(ValueError):
    """A change refused; the message is safe to show the person."""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(endpoint: Endpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous one while
    its overlap lasts."""
    now = now or timezone.now()
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        found.append(endpoint.previous_secret)
    return found


def _clean_types(event_types) -> list[str]:
    chosen = [value for value in EVENT_TYPES if value in set(event_types or ())]
    unknown = set(event_types or ()) - set(EVENT_TYPES)
    if unknown:
        raise EndpointError("Choose event types from the list.")
    if not chosen:
        raise EndpointError("Choose at least one event type.")
    return chosen


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    try:
        egress.check(url)
    except egress.Refused as exc:
        raise EndpointError(str(exc)) from None
    return url


def _audit(action: str, endpoint: Endpoint, *, request=None, actor=None, details: dict | None = None) -> None:
    record(
        action,
        request=request,
        actor=actor,
        company=current().company_id,
        target=f"webhook_endpoint:{endpoint.pk}",
        details=details or {},
    )


def endpoints() -> QuerySet[Endpoint]:
    return Endpoint.objects.all()


def get_endpoint(endpoint_id) -> Endpoint:
    """The current company's endpoint (another company's id is simply not found here)."""
    return Endpoint.objects.get(pk=endpoint_id)


def create_endpoint(*, url: str, event_types, description: str = "", actor=None, request=None) -> tuple[Endpoint, str]:
    """Add an endpoint; returns it and its secret (shown once)."""
    url = _clean_url(url)
    types = _clean_types(event_types)
    if Endpoint.objects.count() >= MAX_ENDPOINTS:
        raise EndpointError(f"A company can have at most {MAX_ENDPOINTS} endpoints.")
    secret = new_secret()
    endpoint = Endpoint.objects.create(
        url=url,
        description=" ".join((description or "").split())[:MAX_DESCRIPTION],
        event_types=types,
        secret=secret,
        created_by_id=company_db.actor_id(actor),
    )
    _audit(EventAction.WEBHOOK_ENDPOINT_CREATED, endpoint, request=request, actor=actor, details={"types": len(types)})
    return endpoint, secret


def update_endpoint(
    endpoint: Endpoint,
    *,
    url: str | None = None,
    event_types=None,
    description: str | None = None,
    actor=None,
    request=None,
) -> Endpoint:
    fields = []
    if url is not None and url.strip() != endpoint.url:
        endpoint.url = _clean_url(url)
        fields.append("url")
    if event_types is not None:
        endpoint.event_types = _clean_types(event_types)
        fields.append("event_types")
    if description is not None:
        endpoint.description = " ".join(description.split())[:MAX_DESCRIPTION]
        fields.append("description")
    if fields:
        endpoint.save(update_fields=fields)
        _audit(
            EventAction.WEBHOOK_ENDPOINT_CHANGED,
            endpoint,
            request=request,
            actor=actor,
            details={"fields": ",".join(fields)},
        )
    return endpoint


def rotate_secret(endpoint: Endpoint, *, actor=None, request=None, now: datetime | None = None) -> str:
    """A new secret; the old one keeps signing for ROTATION_OVERLAP. Returns the new one."""
    now = now or timezone.now()
    with company_db.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        secret = new_secret()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + ROTATION_OVERLAP
        endpoint.secret = secret
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
        _audit(EventAction.WEBHOOK_SECRET_ROTATED, endpoint, request=request, actor=actor)
    return secret


def set_enabled(endpoint: Endpoint, enabled: bool, *, actor=None, request=None) -> Endpoint:
    """Switch an endpoint on or off. Switched on again, it starts afresh (no failure streak)."""
    endpoint.enabled = enabled
    endpoint.disabled_reason = "" if enabled else "Disabled by a member."
    fields = ["enabled", "disabled_reason"]
    if enabled:
        endpoint.failing_since = None
        fields.append("failing_since")
    endpoint.save(update_fields=fields)
    _audit(
        EventAction.WEBHOOK_ENDPOINT_CHANGED if enabled else EventAction.WEBHOOK_ENDPOINT_DISABLED,
        endpoint,
        request=request,
        actor=actor,
        details={"enabled": enabled},
    )
    return endpoint


def delete_endpoint(endpoint: Endpoint, *, actor=None, request=None) -> None:
    _audit(EventAction.WEBHOOK_ENDPOINT_DELETED, endpoint, request=request, actor=actor)
    endpoint.delete()


def deliveries(endpoint: Endpoint) -> QuerySet[Delivery]:
    return Delivery.objects.filter(endpoint=endpoint)


def delivery_page(endpoint: Endpoint, number) -> Page:
    return Paginator(deliveries(endpoint).order_by("-created_at", "-sequence"), PER_PAGE).get_page(number)


def replay(delivery: Delivery, *, actor=None, request=None) -> Delivery:
    """Send a delivery again now (its message id stays, so a receiver can tell a repeat).
    The endpoint must be enabled."""
    # imported here: delivery imports this module (the signing secrets)
    from vouch.webhooks import delivery as sending

    if not delivery.endpoint.enabled:
        raise EndpointError("Enable the endpoint before replaying to it.")
    if delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0:
        raise EndpointError("This delivery has not been tried yet.")
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, claimed_until=None, window_started_at=now
    )
    sending.enqueue_after_commit(current().company_id, delivery.pk)
    delivery.refresh_from_db()
    return delivery
