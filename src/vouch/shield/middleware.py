"""The shield on every request: a blocked source is answered before any view runs, and
the request and its answer are read for hostile signs (``vouch.shield.detection``).

Placed after Django's AuthenticationMiddleware, so a signed-in person can be told apart
(lazily: the session is read only when a block applies). Who is answered by a block:

- a source blocked by address or network, unless the request is a signed-in person's
  (whose own account is not blocked): another's traffic on a shared address or network
  never locks a member out of their company;
- on the private-link pages (/c/, /r/), a blocked address or network is only marked on the
  request (``request.shield_block``): the link's own guard (``vouch.links.decorators``)
  answers with the block unless the token is a real link, as the link throttle does for
  held addresses. Candidates and referees behind a shared address are not locked out;
- a blocked account, everywhere.

The block answer is the same few bytes for everyone: 403, ``Retry-After``,
``X-Vouch-Blocked: 1``, no page, no database read."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from vouch.core import metrics
from vouch.core.requests import VouchRequest
from vouch.shield import detection, forms, patterns, state

# Load balancers' probes are answered without the shield: they must touch nothing (no
# cache, no database), and they come from the operator's own network.
PROBE_PATHS = metrics.HEALTH_PROBES
LINK_PREFIXES = metrics.LINK_PREFIXES
STATUS_POINTS = {404: "not_found", 400: "bad_request", 405: "method_not_allowed"}
BLOCK_BODY = (
    "Your requests have been blocked for a while because some of them looked like an attack.\n"
    "If you think this is a mistake, try again later or contact the site's operator.\n"
)


def blocked_response(block: state.Block, moment: float) -> HttpResponse:
    metrics.blocked_requests_total.inc()
    response = HttpResponse(BLOCK_BODY, status=403, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(block.retry_after(moment))
    response["X-Vouch-Blocked"] = "1"
    response["Cache-Control"] = "no-store"
    return response


class ShieldMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: VouchRequest) -> HttpResponse:
        if request.path in PROBE_PATHS or not detection.enabled():
            return self.get_response(request)
        moment = state.now()
        address = request.META.get("REMOTE_ADDR") or ""
        entries = state.table.current(moment)
        if entries:
            block = state.blocks_for(
                moment, (state.ADDRESS, address), (state.NETWORK, state.network_of_text(address) or "")
            )
            account_block = None
            if block is not None or state.has_account_blocks(moment):
                user_id = detection.signed_in_user_id(request)
                if user_id is not None:
                    account_block = state.blocks_for(moment, (state.ACCOUNT, str(user_id)))
                    block = None  # a signed-in person answers for their own account only
            if account_block is not None:
                return blocked_response(account_block, moment)
            if block is not None:
                if not request.path.startswith(LINK_PREFIXES):
                    return blocked_response(block, moment)
                request.shield_block = block  # type: ignore[attr-defined]  # read by vouch.links.decorators
        token = forms.current_request.set(request)  # for the forms that notice tampering
        try:
            response = self.get_response(request)
        finally:
            forms.current_request.reset(token)
        # Read after the view: what it finds counts toward later requests, and by now the
        # signed-in person's current company is known, so their company's owners see it.
        self._inspect(request)
        point = STATUS_POINTS.get(response.status_code)
        # One point a request: not when it was counted already (a probe for another
        # company's record, a scanner's path) or on a private link (its guard counts).
        counted = getattr(request, "shield_detected", False)
        # Nor on a call with a valid API key: an integration asking for a record deleted
        # meanwhile gets 404s in the course of its work; its volume is the key's limit's
        # and the abuse rules' (vouch.api), its hostile input still counts (_inspect).
        counted = counted or getattr(request, "acting_user_id", None) is not None
        # Nor a signed-in member's 400: every page behind sign-in checks its input through
        # a form and answers its errors with 400, and the requests list does so at every
        # keystroke of its search while a filter has a mistake (twenty blocked the account).
        # What is hostile in such a request is still a point (_inspect, CSRF, tampering).
        counted = counted or (point == "bad_request" and detection.signed_in_user_id(request) is not None)
        if point is not None and not counted and not request.path.startswith(LINK_PREFIXES):
            detection.detect(request, point)
        return response

    @staticmethod
    def _inspect(request: HttpRequest) -> None:
        meta = request.META
        path = request.path
        if patterns.scanner_path(path):
            detection.detect(request, "scanner_path", detail=path[:120])
        point = patterns.hostile_input(path, meta.get("QUERY_STRING", ""))
        for header in patterns.HEADERS:
            point = point or patterns.hostile_header(meta.get(header, ""))
        if point is not None:
            detection.detect(request, point)
        if patterns.scanner_agent(meta.get("HTTP_USER_AGENT", "")):
            detection.detect(request, "scanner_agent", detail=meta.get("HTTP_USER_AGENT", "")[:120])
