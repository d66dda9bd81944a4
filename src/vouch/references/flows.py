"""The reference-check workflow: every change of a request or a reference goes through
a function in a feature package's ``flows`` module (``requests``, ``candidates``,
``referees``, ``fraud``), which checks the move is allowed, records it on the timeline,
keeps the request's status and counters in step, and issues or withdraws private links.

Needs a company context (a member's request, a link's, or a task's). Member-facing
callers ask the role policy first; candidate- and referee-facing callers are behind
``links.decorators.link_required``, whose link already names the one request or
reference they may touch. Emails and background jobs are sent only once the company
database's transaction commits, so a rolled-back change never mails anyone.

This module holds what they share: the error they raise, the company, its workflow
settings, and the timeline note."""

from __future__ import annotations

import logging

from vouch.core.context import current
from vouch.references.request_models import Reference, ReferenceRequest, TimelineEvent, WorkflowSettings
from vouch.tenancy import company_db
from vouch.tenancy.company_row import company_by_id
from vouch.tenancy.models import Company

log = logging.getLogger("vouch.references")


class WorkflowError(ValueError):
    """A move the workflow does not allow; the message is safe to show the person."""


def current_company() -> Company:
    """The current context's company row (read each time, through SQL compiled once)."""
    company = company_by_id(current().company_id)
    if company is None:
        raise Company.DoesNotExist(f"no company {current().company_id}")
    return company


def company_settings() -> WorkflowSettings:
    return WorkflowSettings.current()


def note(
    reference_request: ReferenceRequest, kind: str, summary: str, *, reference: Reference | None = None, actor=None
):
    """Add a line to the request's timeline."""
    return TimelineEvent.objects.create(
        request=reference_request, reference=reference, kind=kind, summary=summary, actor_id=company_db.actor_id(actor)
    )
