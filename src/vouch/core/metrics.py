"""Operators' metrics: the Prometheus counters every layer may add to.

The objects live here, in core, so that any package counts what it does without
importing the endpoint (``vouch.web``, operators only) that exposes them. Labels are
small fixed sets (a route class, a detection point, a rule), never an address, an
account or a company: a label per client would let anyone grow the registry."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ROUTE_CLASSES = ("sign_in", "link", "upload", "pdf", "search", "api", "page", "static", "probe")

requests_total = Counter(
    "vouch_requests_total", "Requests answered, by route class and status class", ["route_class", "status"]
)
request_seconds = Histogram(
    "vouch_request_seconds",
    "Time to answer a request, by route class",
    ["route_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
detections_total = Counter(
    "vouch_intrusion_detections_total", "Hostile requests detected, by detection point", ["point"]
)
blocks_total = Counter(
    "vouch_intrusion_blocks_total", "Sources blocked, by scope (address, network, account)", ["scope"]
)
blocked_requests_total = Counter("vouch_blocked_requests_total", "Requests answered by a block")
throttled_total = Counter(
    "vouch_rate_limited_total", "Requests refused by a rate limit, by route class and scope", ["route_class", "scope"]
)
abuse_responses_total = Counter(
    "vouch_abuse_responses_total", "Abuse rules that fired, by rule and response", ["rule", "response"]
)
