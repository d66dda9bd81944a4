"""Forms of the candidate's link pages: their own details, and each referee they
nominate. Everything a person types is checked here, with a message they can act on,
before the workflow is asked to change anything; the workflow then checks what only
it can (the referee is not the candidate, nobody is nominated twice, a slot is free)."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from vouch.core.text import SingleLineField
from vouch.references.candidates.forms import validate_phone
from vouch.references.months import MonthField
from vouch.references.request_models import Relationship
from vouch.shield.forms import TamperEvidentForm


class CandidateDetailsForm(TamperEvidentForm):
    """The candidate confirms, or corrects, what the recruiter typed about them."""

    name = SingleLineField(
        max_length=200,
        label="Full name",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": "Enter your full name."},
    )
    email = forms.EmailField(
        max_length=254,
        label="Email address",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": "Enter your email address."},
    )
    phone = forms.CharField(
        max_length=40,
        required=False,
        label="Mobile number",
        validators=[validate_phone],
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        help_text="Optional.",
    )

    def __init__(self, *args, **kwargs) -> None:
        # Own element ids: this form shares the candidate's page with the nomination
        # form, whose fields have the same names; with Django's default ids ("id_name")
        # the referee form's labels would point at these inputs.
        kwargs.setdefault("auto_id", "details-%s")
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter your full name.")
        return name


class NominationForm(TamperEvidentForm):
    """One referee, as the candidate knows them."""

    name = SingleLineField(
        max_length=200,
        label="Their full name",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"required": "Enter their full name."},
    )
    email = forms.EmailField(
        max_length=254,
        label="Their email address",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        help_text="Their private link goes to this address.",
        error_messages={"required": "Enter their email address."},
    )
    phone = forms.CharField(
        max_length=40,
        required=False,
        label="Their mobile number",
        validators=[validate_phone],
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off", "inputmode": "tel"}),
        help_text="Optional.",
    )
    relationship = forms.ChoiceField(
        label="They were your",
        choices=[("", "Choose…"), *Relationship.choices],
        error_messages={
            "required": "Choose how you worked together.",
            "invalid_choice": "Choose manager, peer, direct report or client.",
        },
    )
    organisation = SingleLineField(
        max_length=200,
        label="Organisation",
        help_text="Where you worked together, as it was called then.",
        error_messages={"required": "Enter the organisation where you worked together."},
    )
    worked_from = MonthField(label="Worked together from", error_messages={"required": "Enter the month you started."})
    worked_to = MonthField(
        label="Worked together until", required=False, help_text="Leave empty if you still work together."
    )

    def __init__(self, *args, work_email_required: bool = False, **kwargs) -> None:
        # Own element ids, apart from the details form on the same page (see there).
        kwargs.setdefault("auto_id", "referee-%s")
        super().__init__(*args, **kwargs)
        if work_email_required:
            self.fields["email"].help_text = "Use their work email address. Their private link goes to it."

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter their full name.")
        return name

    def clean_organisation(self) -> str:
        organisation = self.cleaned_data["organisation"].strip()
        if not organisation:
            raise forms.ValidationError("Enter the organisation where you worked together.")
        return organisation

    def clean(self) -> dict:
        data = cast(dict[str, Any], super().clean())  # Form.clean() returns cleaned_data
        start, end = data.get("worked_from"), data.get("worked_to")
        if start and end and end < start:
            self.add_error("worked_to", "This is before the month you started working together.")
        return data

    def workflow_arguments(self) -> dict:
        """What ``candidates.flows.nominate`` takes, from the cleaned form."""
        fields = ("name", "email", "phone", "relationship", "organisation", "worked_from", "worked_to")
        return {field: self.cleaned_data[field] for field in fields}
