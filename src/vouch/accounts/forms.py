"""Forms around allauth's signup and Vouch's member management."""

from __future__ import annotations

from django import forms
from django.conf import settings

from vouch.accounts.policy import Role
from vouch.web.text import SingleLineField


class CompanySignupForm(forms.Form):
    """Fields added to allauth's signup form: a new company and its owner's name.

    allauth calls :meth:`signup` inside its own signup flow, after creating the user."""

    full_name = SingleLineField(label="Your name", max_length=150)
    company_name = SingleLineField(label="Company name", max_length=120)
    region = forms.ChoiceField(
        label="Region",
        help_text="Where your company's data is kept. It cannot be changed later.",
    )

    field_order = ["full_name", "email", "company_name", "region", "password1", "password2"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [(r, r.upper()) for r in settings.VOUCH_REGIONS]

    def clean(self) -> dict:
        cleaned_data = super().clean()
        # allauth checks the password against a stand-in user holding only the email;
        # the name typed on this form must not make a password either (P11).
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
        return cleaned_data

    def signup(self, request, user) -> None:
        from vouch.tenancy.services import create_company

        create_company(self.cleaned_data["company_name"], self.cleaned_data["region"], user)


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.TypedChoiceField(label="Role", coerce=int)

    def __init__(self, *args, roles: list[Role], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r.value, r.label) for r in roles]
        self.fields["role"].initial = Role.RECRUITER.value


class RoleForm(forms.Form):
    role = forms.TypedChoiceField(label="Role", coerce=int)

    def __init__(self, *args, roles: list[Role], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r.value, r.label) for r in roles]
