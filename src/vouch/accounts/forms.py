"""Forms around allauth's signup and Vouch's member management."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from vouch.accounts.policy import Role
from vouch.core.text import SingleLineField
from vouch.tenancy import regions


class CompanySignupForm(forms.Form):
    """Fields added to allauth's signup form: a new company and its owner's name.

    allauth calls :meth:`signup` inside its own signup flow, after creating the user."""

    full_name = SingleLineField(label="Your name", max_length=150)
    company_name = SingleLineField(label="Company name", max_length=120)
    # No default: a company created in the wrong place cannot be moved, so the person
    # picks one, by its full name and place.
    region = forms.ChoiceField(
        label="Where your company's data is kept",
        help_text="Choose the region nearest your company and the people you check. It cannot be changed later.",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose where your company's data is kept: it cannot be changed later.",
            "invalid_choice": "Choose one of the regions listed.",
        },
    )

    field_order = ["full_name", "email", "company_name", "region", "password1", "password2"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["region"]).choices = regions.choices()

    def clean(self) -> dict:
        cleaned_data = cast(dict[str, Any], super().clean())  # allauth returns cleaned_data
        # allauth checks the password against a stand-in user holding only the email;
        # the name and company typed on this form must not make a password either (P11).
        password, name = cleaned_data.get("password1"), cleaned_data.get("full_name")
        if password and name:
            from django.contrib.auth import get_user_model
            from django.contrib.auth.password_validation import (
                UserAttributeSimilarityValidator,
                get_default_password_validators,
            )

            stand_in = get_user_model()(full_name=name)
            for validator in get_default_password_validators():
                if isinstance(validator, UserAttributeSimilarityValidator):
                    try:
                        validator.validate(password, stand_in)
                    except forms.ValidationError as error:
                        self.add_error("password1", error)
        if password:
            self._check_context_words(password, name or "", cleaned_data.get("email") or "")
        return cleaned_data

    def signup_company_names(self) -> tuple[str, ...]:
        """The company the person is joining, for the context-word check."""
        return tuple(n for n in [self.cleaned_data.get("company_name")] if n)

    def _check_context_words(self, password: str, name: str, email: str) -> None:
        from vouch.guard import validators
        from vouch.guard.company_security import installation_min_password_length

        minimum = installation_min_password_length()
        words = validators.context_words(name=name, email=email, companies=self.signup_company_names())
        hit = validators.built_on_context(password, words, minimum)
        if hit:
            # add_error drops password1 from cleaned_data, so allauth's own check (which
            # would say the same of the email) does not run: the message comes once.
            self.add_error("password1", validators.context_error(*hit, minimum))

    def signup(self, request, user) -> None:
        from vouch.tenancy.services import create_company

        create_company(self.cleaned_data["company_name"], self.cleaned_data["region"], user)


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.TypedChoiceField(label="Role", coerce=int)

    def __init__(self, *args, roles: list[Role], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = [(r.value, r.label) for r in roles]
        self.fields["role"].initial = Role.RECRUITER.value


class RoleForm(forms.Form):
    role = forms.TypedChoiceField(label="Role", coerce=int)

    def __init__(self, *args, roles: list[Role], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = [(r.value, r.label) for r in roles]
