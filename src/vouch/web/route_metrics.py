"""Requests counted and timed by route class for the operators' metrics
(``vouch.core.metrics.requests_total`` and ``request_seconds``; the class is
``vouch.core.metrics.route_class``). This runs for every request, static files and
probes included, so it sits outermost and must stay far below 0.05 ms
(docs/operations/metrics.md gives the measured figure)."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, HttpResponse

from vouch.core.metrics import request_seconds, requests_total, route_class

# Children made once: labels() looks the pair up in a dict under a lock each time.
_STATUS = ("1xx", "2xx", "3xx", "4xx", "5xx")
_COUNTERS: dict[tuple[str, int], Any] = {}
_TIMERS: dict[str, Any] = {}


def _counter(kind: str, status: int):
    key = (kind, status // 100)
    counter = _COUNTERS.get(key)
    if counter is None:
        label = _STATUS[key[1] - 1] if 1 <= key[1] <= 5 else "other"
        counter = _COUNTERS[key] = requests_total.labels(route_class=kind, status=label)
    return counter


def _timer(kind: str):
    timer = _TIMERS.get(kind)
    if timer is None:
        timer = _TIMERS[kind] = request_seconds.labels(route_class=kind)
    return timer


class RouteMetricsMiddleware:
    """Outermost: times everything below it, the answers of other middleware included."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        kind = route_class(request)
        _timer(kind).observe(time.perf_counter() - started)
        _counter(kind, response.status_code).inc()
        return response
