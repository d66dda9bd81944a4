"""The form of a new API key: name, scopes (only those the member's role allows), an
optional expiry and allowed networks."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django import forms
from django.utils import timezone

from vouch.api.keys import services
from vouch.api.keys.scopes import SCOPES
from vouch.core.text import SingleLineField


class KeyForm(forms.Form):
    name = SingleLineField(max_length=services.MAX_NAME, help_text="What will use it, e.g. “Greenhouse integration”.")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, help_text="Give only what it needs.")
    expires_on = forms.DateField(
        required=False,
        label="Expires on (optional)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The key stops working at the end of this day (UTC).",
    )
    networks = forms.CharField(
        required=False,
        label="Allowed networks (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One network a line, like 203.0.113.0/24. Empty: any network.",
    )

    def __init__(self, *args, allowed: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["scopes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(scope, f"{scope}: {SCOPES[scope][0]}") for scope in allowed]

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        moment = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        if moment <= timezone.now():
            raise forms.ValidationError("Choose a day in the future.")
        return moment

    def clean_networks(self) -> list[str]:
        try:
            return services.parse_networks(self.cleaned_data.get("networks", ""))
        except services.KeyError_ as exc:
            raise forms.ValidationError(str(exc)) from None
