"""What happens when an incident opens: the rule's response, the ``abuse_detected``
security event (with the figures and the response), one email to the company's owners,
and the operators' counter (``vouch.core.metrics.abuse_responses_total``)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from vouch.abuse import reauth, throttle
from vouch.abuse.rules import DOWNLOAD_FACTOR, DOWNLOADS, Response, Rule
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Role
from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.core import metrics
from vouch.guard import suspension
from vouch.guard.notifications import absolute, when_text
from vouch.outbox import queue as outbox_queue
from vouch.outbox.backends import company_headers
from vouch.tenancy.models import Company

log = logging.getLogger("vouch.abuse")

SUBJECT = "Unusual use of your company's Vouch account"


@dataclass(frozen=True)
class Figures:
    rule: Rule
    count: int
    threshold: int
    baseline: float = 0.0


def owners(company_id: uuid.UUID) -> list[str]:
    return list(
        Membership.objects.filter(company_id=company_id, role=Role.OWNER, is_active=True, user__is_active=True)
        .order_by("pk")
        .values_list("user__email", flat=True)
    )


def _apply(response: Response, rule: Rule, user: User | None, request) -> Response:
    """Apply the response to the account; without one (a rule per company), flag only."""
    if user is None or response is Response.FLAG:
        return Response.FLAG
    if response is Response.THROTTLE:
        throttle.throttle(user.pk)
    elif response is Response.REAUTH:
        reauth.demand(user.pk, rule.name)
    elif response is Response.SUSPEND:
        suspension.suspend(user, reason=f"unusual use: {rule.what} far above the limit", request=request)
    return response


def review_url(user: User | None) -> str:
    """The company's security events page, filtered to today's unusual-use events (of
    the account, when there is one)."""
    query = {"action": str(EventAction.ABUSE_DETECTED), "date_from": timezone.now().date().isoformat()}
    if user is not None:
        query["actor"] = str(user.pk)
    return absolute(f"{reverse('security_events')}?{urlencode(query)}")


def respond(figures: Figures, company_id: uuid.UUID, actor_id: int | None, *, request=None) -> None:
    rule = figures.rule
    user = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    try:
        response = _apply(rule.response, rule, user, request)
    except Exception:  # the event and the email still go out: the owners must hear of it
        log.exception("abuse: the %s response of rule %s failed", rule.response, rule.name)
        response = Response.FLAG
    record(
        EventAction.ABUSE_DETECTED,
        request=request,
        actor=user,
        company=company_id,
        target=f"user:{user.pk}" if user is not None else f"company:{company_id}",
        outcome=Outcome.SUCCESS if response is Response.FLAG else Outcome.BLOCKED,
        details={
            "rule": rule.name,
            "count": figures.count,
            "threshold": figures.threshold,
            "window": rule.period,
            "baseline": str(figures.baseline) if rule is DOWNLOADS else None,
            "response": str(response),
        },
    )
    metrics.abuse_responses_total.labels(rule=rule.name, response=str(response)).inc()
    tell_owners(figures, company_id, user, response)


def tell_owners(figures: Figures, company_id: uuid.UUID, user: User | None, response: Response) -> bool:
    recipients = owners(company_id)
    company = Company.objects.filter(pk=company_id).first()
    if not recipients or company is None:
        return False
    data = {
        "company": company,
        "rule": figures.rule,
        "figures": figures,
        "factor": DOWNLOAD_FACTOR,
        "downloads": figures.rule is DOWNLOADS,
        "member": user,
        "response": str(response),
        "when": when_text(timezone.now()),
        "review_url": review_url(user),
    }
    try:
        text = render_to_string("abuse/email/incident.txt", data)
        html = render_to_string("abuse/email/incident.html", data)
        message = EmailMultiAlternatives(
            f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{SUBJECT}",
            text,
            settings.DEFAULT_FROM_EMAIL,
            recipients,
            headers=company_headers(company_id),
        )
        message.attach_alternative(html, "text/html")
        outbox_queue.send(message, "abuse_incident")  # kept and retried when mail is away
    except Exception:  # noqa: BLE001 - the response and the event stand; mail trouble is logged
        log.exception("abuse: could not email the owners of company %s", company_id)
        return False
    return True
