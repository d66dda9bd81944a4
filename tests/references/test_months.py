"""Months as two selects (vouch.references.months): what the selects post becomes "YYYY-MM",
half a month is named as such, the old single "YYYY-MM" post still works, and the markup is a
labelled group that every browser draws the same way."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from vouch.references.candidates.link_forms import NominationForm
from vouch.references.months import EARLIEST_YEAR, MonthField, month_label
from vouch.references.referees.forms import IdentityForm

THIS_YEAR = timezone.now().year


def month_error(data: dict) -> str | None:
    field = MonthField(label="From")
    widget_value = field.widget.value_from_datadict(data, {}, "from")
    try:
        field.clean(widget_value)
    except Exception as error:  # noqa: BLE001  (ValidationError's messages are what is checked)
        return " ".join(getattr(error, "messages", [str(error)]))
    return None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"from_month": "", "from_year": "2021"}, "Choose the month as well as the year."),
        ({"from_month": "06", "from_year": ""}, "Choose the year as well as the month."),
        ({"from_month": "13", "from_year": "2021"}, "Enter a month as YYYY-MM, for example 2021-06."),
        ({"from_month": "06", "from_year": "1949"}, f"Enter a month from {EARLIEST_YEAR} on."),
        ({"from_month": "01", "from_year": str(THIS_YEAR + 1)}, "This month is still to come"),
        ({"from_month": "<b>", "from_year": "x"}, "Enter a month as YYYY-MM"),
        ({"from": "June 2021"}, "Enter a month as YYYY-MM"),
        ({"from": "2021-13"}, "Enter a month as YYYY-MM"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_month_that_cannot_be_is_refused_with_a_message_that_says_why(data, message):
    assert message in (month_error(data) or "")


def test_the_two_selects_and_the_old_single_field_give_the_same_month():
    field = MonthField(label="From", required=False)
    read = field.widget.value_from_datadict
    assert field.clean(read({"from_month": "06", "from_year": "2021"}, {}, "from")) == "2021-06"
    assert field.clean(read({"from": "2021-06"}, {}, "from")) == "2021-06"  # as <input type=month> posted
    assert field.clean(read({"from_month": "", "from_year": ""}, {}, "from")) == ""
    assert field.widget.value_omitted_from_data({"from": "2021-06"}, {}, "from") is False
    assert field.widget.value_omitted_from_data({"from_year": ""}, {}, "from") is False
    assert field.widget.value_omitted_from_data({}, {}, "from") is True
    assert month_label("2021-06") == "June 2021" and month_label("") == ""


def test_the_forms_keep_their_order_checks_across_the_two_selects():
    nomination = NominationForm(
        data={
            "name": "Rita O'Brien",
            "email": "rita@example.com",
            "relationship": "manager",
            "organisation": "Smith & Jones",
            "worked_from_month": "06",
            "worked_from_year": "2024",
            "worked_to_month": "01",
            "worked_to_year": "2021",
        }
    )
    assert not nomination.is_valid()
    assert nomination.errors["worked_to"] == ["This is before the month you started working together."]
    identity = IdentityForm(
        data={
            "job_title": "Director",
            "organisation": "Acme",
            "candidate_title": "Analyst",
            "candidate_from_month": "01",
            "candidate_from_year": "2021",
            "candidate_to_month": "",
            "candidate_to_year": "",
        }
    )
    assert identity.is_valid(), identity.errors
    assert (identity.cleaned_data["candidate_from"], identity.cleaned_data["candidate_to"]) == ("2021-01", "")


def test_the_markup_is_a_labelled_group_of_two_selects_showing_the_saved_month():
    html = str(NominationForm(initial={"worked_to": "2020-03"})["worked_to"].as_field_group())
    assert re.search(r"<fieldset[^>]*>\s*<legend>Worked together until:</legend>", html)
    assert '<label for="referee-worked_to_0">Month</label><select name="worked_to_month"' in html
    assert '<label for="referee-worked_to_1">Year</label><select name="worked_to_year"' in html
    assert '<option value="03" selected>March</option>' in html
    assert '<option value="2020" selected>2020</option>' in html
    years = re.findall(r'<option value="(\d{4})"', html)
    assert (
        years[0] == str(THIS_YEAR) and years[-1] == str(EARLIEST_YEAR) and len(years) == THIS_YEAR - EARLIEST_YEAR + 1
    )
    assert 'type="month"' not in html and "maxlength" not in html
