"""``Idempotency-Key`` on POST: the first answer is kept for 24 hours and a retry of the
same call (same key, method, path and body) gets it again instead of doing the work
twice; the same key with another call is refused (422), and a retry while the first is
still running is refused (409). Kept per company, in its database."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from vouch.api.models import IdempotentCall
from vouch.api.problems import problem
from vouch.tenancy import company_db

HEADER = "HTTP_IDEMPOTENCY_KEY"
KEEP = timedelta(hours=24)
MAX_KEY = 255


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# When this process last removed a company's expired answers (a write: at most once a
# PURGE_EVERY per company and process, not on every POST).
PURGE_EVERY = 60.0
_purged: dict[str, float] = {}


def _purge(now) -> None:
    alias = company_db.alias()
    moment = time.monotonic()
    if moment - _purged.get(alias, -PURGE_EVERY) < PURGE_EVERY:
        return
    if len(_purged) > 10_000:
        _purged.clear()
    _purged[alias] = moment
    IdempotentCall.objects.filter(created_at__lt=now - KEEP).delete()


def handle(request: HttpRequest, call: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
    """Run ``call`` once per idempotency key (inside the company's context)."""
    value = request.META.get(HEADER, "")
    if not value:
        return call(request)
    if len(value) > MAX_KEY:
        return problem(400, f"Idempotency-Key is longer than {MAX_KEY} characters.")
    key_hash = _sha(value.encode())
    fingerprint = _sha(b"\x00".join([str(request.method).encode(), request.path.encode(), request.body]))
    now = timezone.now()
    alias = company_db.alias()
    _purge(now)
    try:
        with transaction.atomic(using=alias):
            record = IdempotentCall.objects.create(key_hash=key_hash, fingerprint=fingerprint)
    except IntegrityError:
        earlier = IdempotentCall.objects.filter(key_hash=key_hash).first()
        if earlier is not None and earlier.created_at < now - KEEP:
            # Expired, not yet purged: gone, and this call is a first one again.
            IdempotentCall.objects.filter(pk=earlier.pk, created_at__lt=now - KEEP).delete()
            return handle(request, call)
        if earlier is None:  # expired and removed between the two statements
            return problem(409, "A call with this Idempotency-Key is in progress; retry it.")
        if earlier.fingerprint != fingerprint:
            return problem(422, "This Idempotency-Key was used for a different call.")
        if earlier.status_code is None:
            return problem(409, "The first call with this Idempotency-Key is still in progress.", Retry_After="1")
        response = HttpResponse(earlier.body, status=earlier.status_code, content_type=earlier.content_type)
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        response = call(request)
    except BaseException:
        IdempotentCall.objects.filter(pk=record.pk).delete()
        raise
    if response.status_code >= 500 or response.streaming:
        # Not kept: a retry may succeed.
        IdempotentCall.objects.filter(pk=record.pk).delete()
        return response
    record.status_code = response.status_code
    record.content_type = response.get("Content-Type", "")[:100]
    record.body = response.content.decode("utf-8", errors="replace")
    record.save(update_fields=["status_code", "content_type", "body"])
    return response
