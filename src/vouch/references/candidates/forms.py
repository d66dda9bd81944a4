"""Forms of the candidate pages: what a person may type, checked before any service runs."""

from __future__ import annotations

from django import forms

from vouch.core.text import SingleLineField
from vouch.references.candidates import uploads
from vouch.references.candidates.services import MIN_PHONE_DIGITS, PHONE_QUERY


def validate_phone(value: str) -> None:
    if not PHONE_QUERY.fullmatch(value) or sum(ch.isdigit() for ch in value) < MIN_PHONE_DIGITS:
        raise forms.ValidationError(
            "Enter a phone number: digits, with spaces, brackets, dashes or a leading + if you like.",
            code="invalid_phone",
        )


class CandidateForm(forms.Form):
    name = SingleLineField(max_length=200, label="Full name")
    email = forms.EmailField(max_length=254, label="Email address")
    phone = forms.CharField(max_length=40, required=False, label="Phone number", validators=[validate_phone])
    notes = forms.CharField(
        max_length=10_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Only people in your company can read these notes.",
    )


class SearchForm(forms.Form):
    q = SingleLineField(
        max_length=254,
        required=False,
        label="Name, email or phone number",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Maria, name@example.com or +44 7700 900123",
                "aria-describedby": "candidate-search-help",
                "autocomplete": "off",
            }
        ),
    )


class AttachmentForm(forms.Form):
    file = forms.FileField(
        label="Add a file",
        allow_empty_file=False,
        help_text=f"{uploads.ACCEPTED}.",
        widget=forms.FileInput(attrs={"accept": uploads.ACCEPT_ATTRIBUTE}),
    )


class DeleteCandidateForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes, delete this candidate and all their files for good",
        error_messages={"required": "Tick the box to confirm the deletion."},
    )
