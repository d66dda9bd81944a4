"""Listing security events for a page: one company's, or the platform's, filtered and paginated.

The scope (which company, or none) comes from the caller, never from the query string:
filters only narrow it."""

from __future__ import annotations

from django import forms
from django.core.paginator import Page, Paginator

from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.filters import DateRangeForm, within_days
from vouch.core.text import SingleLineField

PER_PAGE = 50
MAX_PAGE = 100_000


class EventFilterForm(DateRangeForm):
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *EventAction.choices])
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *Outcome.choices])
    actor = SingleLineField(required=False, max_length=254, label="Actor (email or user id)")
    field_order = ["action", "outcome", "date_from", "date_to", "actor"]


def scoped(company_id):
    """Events of one company (``company_id``), or platform events (``None``)."""
    if company_id is None:
        return SecurityEvent.objects.filter(company_id__isnull=True)
    return SecurityEvent.objects.filter(company_id=company_id)


def apply_filters(queryset, form: EventFilterForm):
    data = form.cleaned_data
    if data.get("action"):
        queryset = queryset.filter(action=data["action"])
    if data.get("outcome"):
        queryset = queryset.filter(outcome=data["outcome"])
    queryset = within_days(queryset, data)
    actor = (data.get("actor") or "").strip()
    if actor:
        if actor.isascii() and actor.isdigit():
            queryset = queryset.filter(actor_label=f"user:{int(actor)}")
        else:
            queryset = queryset.filter(actor__email__iexact=actor)
    return queryset


def page_of_events(company_id, params) -> tuple[EventFilterForm, Page | None]:
    """The filter form and the requested page, or None when the filters are invalid."""
    form = EventFilterForm(params)
    if not form.is_valid():
        return form, None
    queryset = apply_filters(scoped(company_id), form).select_related("actor").order_by("-id")
    paginator = Paginator(queryset, PER_PAGE)
    number = params.get("page", "1")
    number = int(number) if number.isascii() and number.isdigit() and 0 < len(number) <= 6 else 1
    return form, paginator.get_page(min(number, MAX_PAGE))
