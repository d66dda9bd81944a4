"""Months, as candidates and referees give them ("worked together from ... until ..."):
two selects, month and year, that every browser draws the same way. ``<input type=month>``
was drawn as "--------- ----" by Chromium and as a bare text box by browsers without it.

The value stays "YYYY-MM" (what is stored, and what strings compare in date order). A
post with a single "YYYY-MM" field under the field's own name, as the month input sent,
is still read, so links opened before the change and scripts keep working."""

from __future__ import annotations

import re
from datetime import date

from django import forms
from django.utils import dateformat, timezone

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only: \d would take any script's
EARLIEST_YEAR = 1950
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# What the parts of a half-chosen month become, for the field to name the missing one.
_NO_MONTH = re.compile(r"([0-9]{4})-")
_NO_YEAR = re.compile(r"-([0-9]{2})")


def this_month() -> str:
    return timezone.now().strftime("%Y-%m")


def parse_month(value: str) -> tuple[int, int] | None:
    """(year, month) of a "YYYY-MM" value, or None."""
    match = MONTH.fullmatch((value or "").strip())
    if not match or not 1 <= int(match[2]) <= 12:
        return None
    return int(match[1]), int(match[2])


def month_label(value: str) -> str:
    """ "2021-06" as "June 2021" (what the candidate sees back)."""
    parsed = parse_month(value)
    if parsed is None:
        return value or ""
    return dateformat.format(date(parsed[0], parsed[1], 1), "F Y")


class MonthSelect(forms.MultiWidget):
    """A month select and a year select (this year back to 1950), in a fieldset whose legend
    is the field's label; each select has its own visible label."""

    template_name = "references/widgets/month_select.html"
    use_fieldset = True

    def __init__(self, attrs: dict | None = None) -> None:
        months = [("", "Month"), *((f"{number:02d}", name) for number, name in enumerate(MONTH_NAMES, 1))]
        widgets: dict[str, forms.Widget | type[forms.Widget]] = {
            "month": forms.Select(choices=months),
            "year": forms.Select(),
        }
        super().__init__(widgets, attrs)

    def get_context(self, name, value, attrs):
        # The years end at this year, which changes while the server runs.
        years = range(timezone.now().year, EARLIEST_YEAR - 1, -1)
        self.widgets[1].choices = [("", "Year"), *((str(year), str(year)) for year in years)]
        context = super().get_context(name, value, attrs)
        for subwidget, label in zip(context["widget"]["subwidgets"], ("Month", "Year"), strict=True):
            subwidget["part_label"] = label
            subwidget["attrs"].setdefault("autocomplete", "off")
        return context

    def decompress(self, value):
        match = MONTH.fullmatch(value or "")
        return [match[2], match[1]] if match else ["", ""]

    # One "YYYY-MM" string rather than MultiWidget's list: the field is a CharField, and the
    # value compares and is stored as the month input's was.
    def value_from_datadict(self, data, files, name) -> str | None:  # type: ignore[override]
        month, year = data.get(f"{name}_month"), data.get(f"{name}_year")
        if month is None and year is None:
            return data.get(name)  # one "YYYY-MM" field, as <input type=month> posted
        month, year = (month or "").strip(), (year or "").strip()
        if not month and not year:
            return ""
        return f"{year}-{month}"

    def value_omitted_from_data(self, data, files, name) -> bool:
        return name not in data and super().value_omitted_from_data(data, files, name)


class MonthField(forms.CharField):
    """A month as "YYYY-MM", from January 1950 up to this month, chosen with ``MonthSelect``."""

    widget = MonthSelect

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 7)
        super().__init__(**kwargs)
        self.error_messages["max_length"] = "Enter a month as YYYY-MM, for example 2021-06."

    def widget_attrs(self, widget) -> dict:
        return {}  # no maxlength on the selects

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ""
        if _NO_MONTH.fullmatch(value):
            raise forms.ValidationError("Choose the month as well as the year.", code="no_month")
        if _NO_YEAR.fullmatch(value):
            raise forms.ValidationError("Choose the year as well as the month.", code="no_year")
        parsed = parse_month(value)
        if parsed is None:
            raise forms.ValidationError("Enter a month as YYYY-MM, for example 2021-06.", code="month")
        if parsed[0] < EARLIEST_YEAR:
            raise forms.ValidationError(f"Enter a month from {EARLIEST_YEAR} on.", code="month_early")
        if f"{parsed[0]:04d}-{parsed[1]:02d}" > this_month():
            raise forms.ValidationError("This month is still to come: choose one up to this month.", code="future")
        return f"{parsed[0]:04d}-{parsed[1]:02d}"
