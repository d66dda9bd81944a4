"""The endpoint forms: the URL's and types' rules are the services' (vouch.webhooks.services)."""

from __future__ import annotations

from django import forms

from vouch.core.text import SingleLineField
from vouch.webhooks.services import EVENT_LABELS, MAX_DESCRIPTION


class EndpointForm(forms.Form):
    url = SingleLineField(label="URL", max_length=2000, help_text="https:// only; a public address.")
    description = SingleLineField(max_length=MAX_DESCRIPTION, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events", choices=list(EVENT_LABELS.items()), widget=forms.CheckboxSelectMultiple
    )
