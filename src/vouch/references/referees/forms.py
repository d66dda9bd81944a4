"""Forms of the referee's pages: who they are, and why they decline. The answers
themselves are checked by ``answers.clean`` against the request's questionnaire."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from vouch.core.text import SingleLineField
from vouch.references.months import MonthField
from vouch.shield.forms import TamperEvidentForm

MAX_REASON = 2000


class IdentityForm(TamperEvidentForm):
    """Step 1: the referee says who they are and when they worked with the candidate,
    so the company can weigh the answers (``referees.flows.confirm_referee`` keeps them)."""

    job_title = SingleLineField(max_length=200, label="Your job title")
    organisation = SingleLineField(max_length=200, label="Your organisation")
    candidate_title = SingleLineField(max_length=200, label="The candidate's job title when you worked together")
    candidate_from = MonthField(label="You worked together from")
    candidate_to = MonthField(
        label="You worked together until", required=False, help_text="Leave empty if you still work together."
    )

    def __init__(self, *args, candidate_name: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if candidate_name:
            self.fields["candidate_title"].label = f"{candidate_name}'s job title when you worked together"
        self.fields["job_title"].widget.attrs["autocomplete"] = "organization-title"
        self.fields["organisation"].widget.attrs["autocomplete"] = "organization"

    def clean(self) -> dict:
        data = cast(dict[str, Any], super().clean())  # Form.clean() returns cleaned_data
        start, end = data.get("candidate_from"), data.get("candidate_to")
        if start and end and end < start:  # "YYYY-MM" strings sort as dates
            self.add_error("candidate_to", "This month is before the month you started working together.")
        return data


class DeclineForm(TamperEvidentForm):
    reason = forms.CharField(
        max_length=MAX_REASON,
        label="Why are you declining?",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For example: you do not know them well enough, or you are not allowed to give references.",
        error_messages={"required": "Say briefly why you are declining."},
    )
