"""Background jobs of the workflow (django-tasks): reminders, expiry at the deadline,
retention. Being written: the scheduling entry points below are what the workflow
calls once a change commits."""

from __future__ import annotations


def schedule_for_request(company_id, request_id) -> None:
    """The candidate's link was (re)sent or the deadline moved: plan the candidate's
    reminders and the request's expiry."""


def schedule_for_reference(company_id, reference_id) -> None:
    """A referee was invited: plan their reminders."""
