"""Operators' metrics: the Prometheus counters every layer may add to.

The objects live here, in core, so that any package counts what it does without
importing the endpoint (``vouch.web``, operators only) that exposes them. Labels are
small fixed sets (a route class, a detection point, a rule), never an address, an
account or a company: a label per client would let anyone grow the registry."""

from __future__ import annotations

from django.http import HttpRequest
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
low_priority_total = Counter(
    "vouch_low_priority_requests_total",
    "Requests run at low priority under a flood (vouch.shield.priority), by who sent them (anonymous, account) "
    "and whether they ran in their turn or, having waited in vain, beside the others (turn, anyway)",
    ["who", "ran"],
)
abuse_responses_total = Counter(
    "vouch_abuse_responses_total", "Abuse rules that fired, by rule and response", ["rule", "response"]
)


# The route class of a request, from its path, method and content type with string tests
# only (no URL resolving): it is worked out for every request, for the request metrics
# (vouch.web.route_metrics) and for the request limits (vouch.shield.limits), which must
# agree on what a class is.
# Load balancers' probes: answered without session, shield or limits (they touch nothing).
HEALTH_PROBES = frozenset({"/livez", "/healthz"})
# The operators' scraper too is a probe for metrics and limits, but stays seen by the shield
# (a wrong metrics token is an outsider's request).
PROBES = HEALTH_PROBES | {"/metrics"}
LINK_PREFIXES = ("/c/", "/r/")
# Every /accounts/ page (sign-in, sign-up, codes, resets, 2FA): the sign-in class's limits
# are far above what a person uses on their account pages.
SIGN_IN_PREFIX = "/accounts/"
STATIC = ("/static/", "/favicon.ico", "/robots.txt")
# The pages whose ?q= runs a search (their other views are pages).
SEARCH_PATHS = frozenset({"/requests/", "/candidates/"})


def route_class(request: HttpRequest) -> str:
    """The route class of a request: uploads are multipart POSTs wherever they go."""
    path = request.path_info
    if path in PROBES:
        return "probe"
    if path.startswith(STATIC):
        return "static"
    if request.method == "POST" and request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
        return "upload"
    if path.startswith(LINK_PREFIXES):
        return "link"
    if path.startswith(SIGN_IN_PREFIX):
        return "sign_in"
    if path.endswith(".pdf"):
        return "pdf"
    if path in SEARCH_PATHS and request.GET.get("q", "").strip():
        return "search"
    return "page"
