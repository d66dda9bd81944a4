"""The operators' page of intrusion detection (/operator/security/), robots.txt and the
honeytoken it advertises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.audit.events import record
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.shield import detection, state
from vouch.shield.points import POINTS

# A path no page links to and robots.txt asks crawlers to leave alone: only a scanner
# mining robots.txt for hidden places asks for it.
HONEYTOKEN_PATH = "/internal/exports/all-candidates/"
ROBOTS = f"User-agent: *\nDisallow: /\nDisallow: {HONEYTOKEN_PATH}\n"
HISTORY_DAYS = 7


def robots(request: HttpRequest) -> HttpResponse:
    return HttpResponse(ROBOTS, content_type="text/plain; charset=utf-8")


def honeytoken(request: HttpRequest) -> HttpResponse:
    detection.detect(request, "honeytoken", detail=request.path[:120])
    return HttpResponseNotFound("Not found.\n", content_type="text/plain; charset=utf-8")


@login_required
def operator_security(request: HttpRequest) -> HttpResponse:
    policy.require(request.user.is_staff)
    moment = state.now()
    blocks = [
        {
            "block": b,
            "reason": POINTS[b.reason].label if b.reason in POINTS else b.reason,
            "until": datetime.fromtimestamp(b.until, tz=UTC),
            "minutes_left": max(1, int(b.until - moment) // 60),
        }
        for b in state.active_blocks(moment)
    ]
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    history = SecurityEvent.objects.filter(
        action__in=(EventAction.INTRUSION_BLOCKED, EventAction.INTRUSION_UNBLOCKED), occurred_at__gte=since
    ).only("occurred_at", "action", "target", "details", "actor_label")
    page = Paginator(history, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "shield/operator_security.html",
        {"blocks": blocks, "page": page, "history_days": HISTORY_DAYS, "points": POINTS.values()},
    )


@login_required
@require_POST
def lift_block(request: HttpRequest) -> HttpResponse:
    policy.require(request.user.is_staff)
    scope, source = request.POST.get("scope", ""), request.POST.get("source", "")[:64]
    if scope not in (state.ADDRESS, state.NETWORK, state.ACCOUNT) or not source:
        messages.error(request, "That block was not found.")
        return redirect("operator_security")
    if state.lift(scope, source, state.now()):
        record(
            EventAction.INTRUSION_UNBLOCKED,
            request=request,
            target=f"{scope}:{source}",
            outcome=Outcome.SUCCESS,
            details={"scope": scope},
        )
        messages.success(request, f"The block on {scope} {source} was lifted.")
    else:
        messages.info(request, "That block had already ended.")
    return redirect("operator_security")
