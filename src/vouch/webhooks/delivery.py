"""Delivering webhooks: recorded with the workflow's change, sent by the background worker.

The workflow's event is recorded as one :class:`Delivery` per matching endpoint inside
the change's own transaction (vouch.webhooks.receivers), and a ``deliver`` task is queued
once it commits. A sender claims the row (a conditional update: one claimant wins, and
a claim older than ``LEASE`` is a dead sender's), sends it through the guard of
vouch.webhooks.egress, and records the outcome only while it still holds the claim.

A failure is tried again after an exponential backoff with full jitter (a random wait
between 0 and ``BASE`` x 2^attempts, at most ``CAP``), or after the receiver's
``Retry-After`` when it gives one, until ``WINDOW`` (three days) from the event has
passed. 410 Gone disables the endpoint at once; an endpoint whose every attempt failed
for ``WINDOW`` is disabled too, and the company's owners are emailed.

A new event's deliveries are sent by a *round* of their company (``deliver_due``): one
task that sends every due, unclaimed delivery of the company, oldest first, in batches,
for up to ``ROUND_SECONDS`` (then it queues the next round). An event queues a round only
when none is waiting: a flag in the shared cache, set when a round is queued and cleared
when it starts, so a burst of events costs one task, not one each (a cache that cannot
be reached: one task per delivery, as a retry is queued). A round clears the flag before
it looks, so an event committed after its look queues the next round.

Nothing is lost to a crash: a row stays pending until an attempt's outcome is recorded,
and the worker's background round (vouch.references.jobs) queues again every pending
row that is overdue by ``OVERDUE`` and not claimed (a lost task, a dead sender); a
delivery sent but not yet marked is sent again once its claim lapses, with the same
``webhook-id`` (at least once: a receiver dedupes by it)."""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import ssl
import time
import uuid
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django_tasks import task
from standardwebhooks.webhooks import Webhook

from vouch.core.context import company_context, current
from vouch.tenancy import company_db
from vouch.tenancy.models import Company, CompanyStatus
from vouch.webhooks import egress, notices, services
from vouch.webhooks.models import Delivery, DeliveryStatus, Endpoint

log = logging.getLogger("vouch.webhooks")

WINDOW = timedelta(days=3)
BASE_SECONDS = 30.0
CAP_SECONDS = 12 * 3600.0
# The longest wait a receiver's Retry-After may ask for.
RETRY_AFTER_MAX_SECONDS = 24 * 3600.0
LEASE = timedelta(minutes=2)
OVERDUE = timedelta(minutes=5)
# A round of a company's due deliveries: how many are looked up at once, and how long it
# may keep the worker before it leaves the rest to its next round.
ROUND_BATCH = 100
ROUND_SECONDS = 10.0
# How long a queued round's flag lasts at most (a round lost with its flag set delays
# the next events by this much; the background round still finds them).
ROUND_FLAG_SECONDS = 60
USER_AGENT = "Vouch-Webhooks/1"
ERROR_LENGTH = 300

_random = random.SystemRandom()


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: full jitter, at least a second."""
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2 ** min(attempts, 32))
    return timedelta(seconds=max(1.0, (rng or _random).uniform(0, ceiling)))


def retry_after(value: str, now: datetime) -> timedelta | None:
    """A ``Retry-After`` value (seconds, or an HTTP date) as a wait, within a day; None if unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return timedelta(seconds=min(max(seconds, 1.0), RETRY_AFTER_MAX_SECONDS))


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def headers_for(delivery: Delivery, body: bytes, secrets: list[str], now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: one signature per secret in use (two during a rotation)."""
    signatures = " ".join(Webhook(secret).sign(delivery.message_id, now, body) for secret in secrets)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }


# --- queueing --------------------------------------------------------------------------


def enqueue(company_id, delivery_id, when: datetime | None = None) -> None:
    """Queue a delivery's attempt (ids only: the queue is not encrypted). A queue that
    cannot be reached is logged: the background round finds the row later."""
    try:
        job = deliver.using(run_after=when) if when else deliver
        job.enqueue(str(company_id), str(delivery_id))
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not queue webhook delivery %s", delivery_id)


def enqueue_after_commit(company_id, delivery_id, when: datetime | None = None) -> None:
    company_db.on_commit(lambda: enqueue(company_id, delivery_id, when))


def _round_flag(company_id) -> str:
    return f"webhooks:round:{uuid.UUID(str(company_id)).hex}"


def queue_round(company_id, delivery_ids) -> None:
    """Queue a round of the company's due deliveries unless one is waiting already; a
    cache or queue that cannot be reached: each delivery its own task (``enqueue``)."""
    flagged = False
    try:
        if not cache.add(_round_flag(company_id), 1, timeout=ROUND_FLAG_SECONDS):
            return  # a round is queued and has not started: it will send these
        flagged = True
        deliver_due.enqueue(str(company_id))
    except Exception:  # noqa: BLE001 - see the docstring
        log.warning("could not queue a webhook round of company %s; one task a delivery", company_id, exc_info=True)
        if flagged:  # no round is queued after all: the next event must not wait for one
            try:
                cache.delete(_round_flag(company_id))
            except Exception:  # noqa: BLE001 - it lapses by itself
                log.warning("could not clear the webhook round flag of company %s", company_id, exc_info=True)
        for delivery_id in delivery_ids:
            enqueue(company_id, delivery_id)


def queue_round_after_commit(company_id, delivery_ids) -> None:
    ids = list(delivery_ids)
    company_db.on_commit(lambda: queue_round(company_id, ids))


# --- one attempt -----------------------------------------------------------------------


def _active_company(company_id) -> Company | None:
    found = list(Company.objects.filter(pk=company_id).order_by()[:1])  # by primary key: no ORDER BY
    company = found[0] if found else None
    if company is None or not company.is_active or company.status == CompanyStatus.DELETED:
        return None
    return company


def _claim(delivery_id, now: datetime) -> datetime | None:
    until = now + LEASE
    claimed = Delivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), pk=delivery_id, status=DeliveryStatus.PENDING
    ).update(claimed_until=until)
    return until if claimed else None


def _send(delivery: Delivery, now: datetime) -> tuple[int | None, str, str, int]:
    """(status code or None, Retry-After, error, milliseconds) of one POST."""
    body = body_of(delivery)
    headers = headers_for(delivery, body, services.signing_secrets(delivery.endpoint, now), now)
    started = time.monotonic()
    try:
        answer = egress.post(delivery.endpoint.url, body, headers)
    except egress.Refused as exc:
        return None, "", f"Refused: {exc}", int((time.monotonic() - started) * 1000)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return None, "", _describe(exc), int((time.monotonic() - started) * 1000)
    return answer.status, answer.retry_after, "", answer.duration_ms


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "Timed out."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "The receiver's certificate was not accepted."
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused."
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:ERROR_LENGTH]


def attempt(delivery_id, *, now: datetime | None = None) -> str:
    """Try one delivery now (in its company's context). Returns what happened."""
    now = now or timezone.now()
    until = _claim(delivery_id, now)
    if until is None:
        return "not pending or claimed"
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    held = Delivery.objects.filter(pk=delivery.pk, claimed_until=until)
    if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
        held.update(claimed_until=None)
        return "not due"
    if not endpoint.enabled:
        held.update(status=DeliveryStatus.FAILED, claimed_until=None, error="The endpoint is disabled.")
        return "endpoint disabled"

    code, wait_header, error, duration = _send(delivery, now)
    finished = timezone.now()
    fields = {
        "attempts": delivery.attempts + 1,
        "last_attempt_at": now,
        "response_code": code,
        "duration_ms": duration,
        "claimed_until": None,
    }
    if code is not None and 200 <= code < 300:
        held.update(**fields, status=DeliveryStatus.DELIVERED, error="", next_attempt_at=None)
        if endpoint.failing_since is not None:  # a streak ends (no query when there was none)
            Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return "delivered"
    if code is not None and not error:
        error = "Redirect not followed." if 300 <= code < 400 else f"The receiver answered {code}."
    if code == 410:
        held.update(**fields, status=DeliveryStatus.FAILED, error=error, next_attempt_at=None)
        _disable(endpoint, "The receiver answered 410 Gone.")
        return "gone"

    Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    failing_since = Endpoint.objects.filter(pk=endpoint.pk).values_list("failing_since", flat=True).first() or now
    wait = (retry_after(wait_header, finished) if wait_header else None) or backoff(delivery.attempts + 1)
    next_at = finished + wait
    # By the next try it would have failed for the whole window: the endpoint goes off.
    if next_at - failing_since >= WINDOW:
        held.update(**fields, status=DeliveryStatus.FAILED, error=error, next_attempt_at=None)
        _disable(endpoint, "Every delivery failed for three days.")
        return "failed; endpoint disabled"
    if next_at > delivery.window_started_at + WINDOW:
        held.update(**fields, status=DeliveryStatus.FAILED, error=error, next_attempt_at=None)
        return "failed; gave up"
    if held.update(**fields, error=error, next_attempt_at=next_at):
        enqueue(current().company_id, delivery.pk, next_at)
    return "retry"


def _disable(endpoint: Endpoint, reason: str) -> None:
    """Switch the endpoint off (once) and tell the owners."""
    if Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(enabled=False, disabled_reason=reason):
        endpoint.enabled, endpoint.disabled_reason = False, reason
        notices.endpoint_disabled(current().company_id, endpoint, reason)


@task()
def deliver(company_id: str, delivery_id: str) -> str:
    company = _active_company(company_id)
    if company is None:
        return "company inactive"
    with company_context(company):
        return attempt(delivery_id)


@task()
def deliver_due(company_id: str) -> str:
    """A round: every due, unclaimed delivery of the company, oldest first."""
    try:
        cache.delete(_round_flag(company_id))  # before looking: a later event queues the next round
    except Exception:  # noqa: BLE001 - the flag lapses by itself
        log.warning("could not clear the webhook round flag of company %s", company_id, exc_info=True)
    company = _active_company(company_id)
    if company is None:
        return "company inactive"
    return deliver_round(company)


def deliver_round(company: Company, *, seconds: float = ROUND_SECONDS) -> str:
    started, sent, seen = time.monotonic(), 0, set()
    with company_context(company):
        while True:
            now = timezone.now()
            due = [
                pk
                for pk in Delivery.objects.filter(
                    Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
                    status=DeliveryStatus.PENDING,
                    next_attempt_at__lte=now,
                )
                .order_by("created_at", "sequence")
                .values_list("pk", flat=True)[:ROUND_BATCH]
                if pk not in seen  # one attempt per round each (a failure waits for its retry)
            ]
            if not due:
                return f"{sent} sent"
            for delivery_id in due:
                seen.add(delivery_id)
                if attempt(delivery_id) == "delivered":
                    sent += 1
                if time.monotonic() - started > seconds:
                    queue_round(company.pk, [])  # the rest in the next round
                    return f"{sent} sent; the rest queued"


# --- the background round's safety net -------------------------------------------------


def sweep_company(company: Company, *, now: datetime | None = None) -> int:
    """Queue again the company's pending deliveries overdue by OVERDUE and not held by
    a live claim (their task was lost, or their sender died). Returns how many."""
    now = now or timezone.now()
    queued = 0
    with company_context(company):
        overdue = Delivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now - OVERDUE,
        ).values_list("pk", flat=True)
        for delivery_id in list(overdue[:500]):
            # Marked due now, so the next round leaves it alone while its task waits.
            if Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(next_attempt_at=now):
                enqueue(company.pk, delivery_id)
                queued += 1
    return queued


def sweep_all() -> int:
    queued = 0
    for company in Company.objects.filter(is_active=True).exclude(status=CompanyStatus.DELETED).order_by("pk"):
        try:
            queued += sweep_company(company)
        except Exception:  # one company's failure must not stop the others
            log.exception("could not look for overdue webhook deliveries of company %s", company.pk)
    if queued:
        log.warning("%d webhook delivery(ies) left pending were queued again", queued)
    return queued
