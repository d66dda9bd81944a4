"""Pieces shared by list pages that filter by date (security events, activity log)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone


class DateRangeForm(forms.Form):
    """A "from" and "to" day, both optional; "to" includes the whole day."""

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return data


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def within_days(queryset, data: dict, field: str = "occurred_at"):
    """``queryset`` narrowed to the cleaned ``date_from``/``date_to`` of a DateRangeForm."""
    if data.get("date_from"):
        queryset = queryset.filter(**{f"{field}__gte": _day_start(data["date_from"])})
    if data.get("date_to"):
        queryset = queryset.filter(**{f"{field}__lt": _day_start(data["date_to"] + timedelta(days=1))})
    return queryset
