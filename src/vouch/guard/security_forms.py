"""The company security settings form (owners only; see ``security_views``)."""

from __future__ import annotations

from typing import cast

from django import forms
from django.conf import settings
from django.core.validators import MinValueValidator

from vouch.guard import company_security
from vouch.guard.company_security import MAX_GRACE_DAYS, MAX_PASSWORD_LENGTH, MIN_ABSOLUTE_HOURS, MIN_IDLE_MINUTES


class CompanySecurityForm(forms.Form):
    require_2fa = forms.BooleanField(
        label="Require two-factor authentication for all members",
        required=False,
        help_text="Members without it see a banner until the deadline, then can only set it up.",
    )
    require_2fa_grace_days = forms.IntegerField(
        label="Grace period (days)", min_value=0, max_value=MAX_GRACE_DAYS, initial=7
    )
    idle_timeout_minutes = forms.IntegerField(
        label="Sign members out after this many idle minutes",
        required=False,
        min_value=MIN_IDLE_MINUTES,
        help_text="Empty: the installation's limit.",
    )
    absolute_timeout_hours = forms.IntegerField(
        label="Sign members out this many hours after sign-in, whatever they do",
        required=False,
        min_value=MIN_ABSOLUTE_HOURS,
        help_text="Empty: the installation's limit.",
    )
    allowed_networks = forms.CharField(
        label="Networks members may use",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="One address or network per line, e.g. 203.0.113.0/24. Empty: anywhere.",
    )
    min_password_length = forms.IntegerField(
        label="Minimum password length",
        required=False,
        max_value=MAX_PASSWORD_LENGTH,
        help_text="Empty: the installation's minimum. Applies when members next set a password.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        installation_min = company_security.installation_min_password_length()
        cast(forms.IntegerField, self.fields["min_password_length"]).min_value = installation_min + 1
        self.fields["min_password_length"].widget.attrs["min"] = installation_min + 1
        self.fields["min_password_length"].validators.append(MinValueValidator(installation_min + 1))
        idle_max = settings.SESSION_IDLE_SECONDS // 60
        absolute_max = settings.SESSION_MAX_SECONDS // 3600
        self.fields["idle_timeout_minutes"].help_text = f"Empty: the installation's limit ({idle_max} minutes)."
        self.fields["absolute_timeout_hours"].help_text = f"Empty: the installation's limit ({absolute_max} hours)."

    def clean_allowed_networks(self) -> str:
        text = self.cleaned_data.get("allowed_networks", "")
        try:
            company_security.parse_networks(text)
        except company_security.SecuritySettingsError as exc:
            raise forms.ValidationError(str(exc)) from None
        return text

    def changes(self) -> company_security.Changes:
        data = self.cleaned_data
        return company_security.Changes(
            require_2fa=data["require_2fa"],
            require_2fa_grace_days=data["require_2fa_grace_days"],
            idle_timeout_minutes=data["idle_timeout_minutes"],
            absolute_timeout_hours=data["absolute_timeout_hours"],
            allowed_networks=data["allowed_networks"],
            min_password_length=data["min_password_length"],
        )

    @classmethod
    def from_settings(cls, row) -> CompanySecurityForm:
        return cls(
            initial={
                "require_2fa": row.require_2fa,
                "require_2fa_grace_days": row.require_2fa_grace_days,
                "idle_timeout_minutes": row.idle_timeout_minutes,
                "absolute_timeout_hours": row.absolute_timeout_hours,
                "allowed_networks": row.allowed_networks,
                "min_password_length": row.min_password_length,
            }
        )
