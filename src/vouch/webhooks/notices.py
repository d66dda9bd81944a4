"""The owners' email when the system disables a webhook endpoint (410 Gone, or failing
for three days). Sent through the outbox, marked as the company's (purged with it)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from vouch.accounts.models import Membership
from vouch.accounts.policy import Role
from vouch.outbox.backends import company_headers
from vouch.tenancy.models import Company
from vouch.webhooks.models import Endpoint

log = logging.getLogger("vouch.webhooks")


def endpoint_disabled(company_id, endpoint: Endpoint, reason: str) -> int:
    """One message per active owner (no owner sees another's address); how many went
    out. A failure is logged, not raised: the endpoint is disabled either way, and its
    page says why."""
    company = Company.objects.get(pk=company_id)
    owners = Membership.objects.filter(
        company=company, role=Role.OWNER, is_active=True, user__is_active=True
    ).select_related("user")
    # A subject is one line of plain text whatever the company is called.
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(
        f"A webhook endpoint of {company.name} was disabled".split()
    )
    data = {
        "company_name": company.name,
        "endpoint_url": endpoint.url,
        "description": endpoint.description,
        "reason": reason,
        "endpoint_page": f"{settings.PUBLIC_URL}{reverse('webhook_detail', args=[endpoint.pk])}",
    }
    sent = 0
    for membership in owners:
        user = membership.user
        try:
            text = render_to_string("webhooks/email/disabled.txt", {**data, "user": user})
            html = render_to_string("webhooks/email/disabled.html", {**data, "user": user})
            message = EmailMultiAlternatives(
                subject, text, settings.DEFAULT_FROM_EMAIL, [user.email], headers=company_headers(company.pk)
            )
            message.attach_alternative(html, "text/html")
            message.send()
            sent += 1
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("webhooks: could not send the endpoint-disabled email")
    return sent
