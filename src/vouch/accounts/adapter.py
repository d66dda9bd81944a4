"""django-allauth adapter: Vouch's rules around allauth's account flows."""

from __future__ import annotations

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def clean_email(self, email: str) -> str:
        email = super().clean_email(email)
        # Django's form EmailField allows 320 characters, the email columns hold 254, and
        # allauth would silently cut a longer address down to a different one.
        MaxLengthValidator(account_settings.EMAIL_MAX_LENGTH)(email)
        return email

    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        user = super().save_user(request, user, form, commit=False)
        user.full_name = form.cleaned_data.get("full_name", "").strip()
        user.email = user.email.lower()
        if commit:
            user.save()
        return user

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        if request.user.is_authenticated and request.user.is_staff:
            return "/operator/"
        return super().get_login_redirect_url(request)
