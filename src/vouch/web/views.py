"""Home, dashboard, health and the operator's landing page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.db import connections
from django.db.models import Count
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from vouch import regions
from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action, Role
from vouch.activity import services as activity
from vouch.audit import spool
from vouch.audit.events import record_refusal
from vouch.backups import health as data_safety
from vouch.core import diskfull
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.references.desk import figures
from vouch.references.requests.access import visibility
from vouch.tenancy.models import Company
from vouch.tenancy.services import active_member_count

log = logging.getLogger("vouch.web")


def home(request: VouchRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("operator_home" if request.user.is_staff else "dashboard")
    return render(request, "web/home.html")


# The dashboard's two views: the member's own requests, or every request they may see.
DASHBOARD_VIEWS = ("mine", "company")


@company_action(Action.VIEW_DASHBOARD)
def dashboard(request: CompanyRequest) -> HttpResponse:
    membership = request.membership
    asked = request.GET.get("view", "")
    if asked and asked not in DASHBOARD_VIEWS:
        return HttpResponseBadRequest("Unknown view: choose mine or company.", content_type="text/plain")
    others = [m for m in request.memberships if m.company_id != membership.company_id]
    member_count = active_member_count(membership.company)
    # Recruiters start on their own requests; admins, owners and viewers on the company's.
    want_company = asked == "company" or (not asked and membership.role != Role.RECRUITER)
    desk = figures.build(visibility(request), membership.user_id, want_company=want_company)
    recent_log = activity.latest_lines(5) if policy.can(membership, Action.VIEW_ACTIVITY) else []
    return render(
        request,
        "web/dashboard.html",
        {
            "desk": desk,
            "recent_log": recent_log,
            "other_memberships": others,
            "member_count": member_count,
            "can_invite": policy.can(membership, Action.INVITE_MEMBER),
            "can_create_request": policy.can(membership, Action.CREATE_REQUEST),
        },
    )


@login_required
def operator_home(request: VouchRequest) -> HttpResponse:
    # Operators see installation health, never a company's personal data (P15).
    policy.require(request.user.is_staff)

    # Per region: the full name (what companies chose at signup), the code, and how many.
    counts = dict(Company.objects.values_list("region").annotate(n=Count("pk")).order_by())
    names = list(settings.VOUCH_REGIONS) + sorted(set(counts) - set(settings.VOUCH_REGIONS))
    region_rows = [(regions.label(name), name, counts.get(name, 0)) for name in names]
    return render(
        request,
        "web/operator.html",
        {"company_count": sum(counts.values()), "regions": region_rows},
    )


def alive(request: VouchRequest) -> HttpResponse:
    """Liveness: a constant answer that touches nothing (the benchmark's baseline)."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
def health(request: VouchRequest) -> JsonResponse:
    """For load balancers: 200 when the control database and the cache answer and the
    storage has room (``vouch.core.diskfull``); 503 naming what failed otherwise."""

    checks: dict[str, str] = {"storage": diskfull.storage_state(settings.DATA_DIR)}
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        checks["database"] = "error"
    # The strict alias: the default one would hide a Redis outage as a cache miss.
    cache = caches["guard"]
    try:
        cache.set("vouch:health", "1", 5)
        checks["cache"] = "ok" if cache.get("vouch:health") == "1" else "error"
    except Exception as error:  # noqa: BLE001
        # The embedded default's cache is a table in the control database: a write to it
        # fails when the disk is full.
        checks["cache"] = "error"
        if diskfull.is_storage_full(error):
            checks["storage"] = "full"
    if checks["storage"] == "ok":
        _record_unrecorded_events()
    healthy = all(v == "ok" for v in checks.values())
    body: dict = {"status": "ok" if healthy else "error", "checks": checks}
    if checks["database"] == "ok":
        # Backups, mirror, replication: shown, and "degraded", but never a 503 (see there).
        # States only: this page is public; the details are for `vouch backup status` and
        # the operators' page.
        items = data_safety.report()
        body["data_safety"] = {name: item.get("state", "degraded") for name, item in items.items()}
        if healthy and data_safety.degraded(items):
            body["status"] = "degraded"
    if not healthy:
        # Which component is down, in the words an operator searches the logs for.
        names = {
            "database": "database",
            "cache": "redis" if settings.REDIS_URL else "database cache",
            "storage": "storage",
        }
        body["down"] = [names[name] for name, value in checks.items() if value != "ok"]
    response = JsonResponse(body, status=200 if healthy else 503)
    if checks["storage"] == "full":
        # Polled every few seconds: the full disk is logged once per interval, not per poll.
        diskfull.note_refused("no room left for the data", getattr(request, "request_id", None))
        response._has_been_logged = True  # type: ignore[attr-defined]  # an attribute set at run time
    return response


def _record_unrecorded_events() -> None:
    """Security events counted while the disk was full are recorded once there is room
    again; load balancers poll this page, so that happens soon even when nothing else
    is recorded (``vouch.audit.spool``)."""

    try:
        spool.flush()
    except Exception:  # noqa: BLE001 - the counts are kept; health is answered regardless
        log.warning("audit: the events counted while the storage was full are not recorded yet", exc_info=True)


def csrf_failure(request: VouchRequest, reason: str = "") -> HttpResponse:
    record_refusal(request, reason="csrf")
    return render(
        request,
        "web/error.html",
        {
            "status": 403,
            "title": "Form expired",
            "message": "This form was open too long or came from another site. Go back, reload the page and try again.",
        },
        status=403,
    )
