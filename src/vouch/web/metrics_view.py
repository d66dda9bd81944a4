"""``/metrics``: the operators' Prometheus endpoint (docs/operations/metrics.md).

Never public: without VOUCH_METRICS_TOKEN it answers 404, and a request without that
bearer token gets the same 404. Under ``vouch serve`` each server worker (and the
background worker) writes its counts to files in PROMETHEUS_MULTIPROC_DIR (prometheus-
client's multiprocess mode, set up by ``vouch serve``), so any worker that answers the
scrape gives the sum of all of them; the queue, mirror and backup gauges are read once,
at scrape time (``metric_collectors``)."""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from vouch.web.metric_collectors import OperationsCollector

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own, set by `vouch serve`


def authorised(request: HttpRequest) -> bool:
    token = settings.VOUCH_METRICS_TOKEN
    if not token:
        return False
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def exposition() -> bytes:
    operations = CollectorRegistry()
    operations.register(OperationsCollector())
    if os.environ.get(MULTIPROCESS_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(operations)
    return generate_latest(REGISTRY) + generate_latest(operations)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not authorised(request):
        raise Http404("No such page.")
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
