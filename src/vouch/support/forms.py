"""The operator's request for support access and the owner's decision on it."""

from __future__ import annotations

from django import forms

from vouch.support.models import MAX_HOURS, REASON_MAX, Scope
from vouch.tenancy.models import Company

HOURS_HELP = f"At most {MAX_HOURS} hours."


class CompanyChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Company) -> str:
        return f"{obj.name} ({obj.region.upper()})"


class RequestForm(forms.Form):
    company = CompanyChoice(queryset=Company.objects.filter(is_active=True).order_by("name"), empty_label="Choose…")
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"What you need to look at, and why (the owners read this). At most {REASON_MAX} characters.",
    )
    hours = forms.IntegerField(
        label="For how long (hours)", min_value=1, max_value=MAX_HOURS, initial=4, help_text=HOURS_HELP
    )

    def clean_reason(self) -> str:
        reason = " ".join(self.cleaned_data["reason"].split())
        if not reason:
            raise forms.ValidationError("Say why you need access.")
        return reason


class DecisionForm(forms.Form):
    hours = forms.IntegerField(label="For how long (hours)", min_value=1, max_value=MAX_HOURS, help_text=HOURS_HELP)
    scope = forms.ChoiceField(
        choices=Scope.choices,
        initial=Scope.READ,
        required=False,
        widget=forms.RadioSelect,
        help_text="Read-only lets the operator look at pages and change nothing. Read and write lets them "
        "do what a recruiter does; never members, settings, security, exports or erasure.",
    )

    def clean_scope(self) -> str:
        # Read-only unless the owner chose otherwise.
        return self.cleaned_data.get("scope") or Scope.READ
