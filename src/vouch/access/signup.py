"""Signup through an invitation: allauth's own signup view and form, minus the
company fields, ending in the invitation being accepted instead of a company made.

Kept apart from ``forms.py`` because allauth's form module imports that one."""

from __future__ import annotations

from allauth.account.forms import SignupForm
from allauth.account.views import SignupView
from django import forms
from django.contrib.auth.hashers import make_password

from vouch.access import invitations
from vouch.guard.company_security import company_min_password_length


class InvitedSignupForm(SignupForm):
    def __init__(self, *args, invitation=None, **kwargs) -> None:
        self.invitation = invitation
        super().__init__(*args, **kwargs)
        for name in ("company_name", "region"):
            self.fields.pop(name, None)

    def signup_company_names(self) -> tuple[str, ...]:
        return (self.invitation.company.name,) if self.invitation is not None else ()

    def clean_email(self) -> str:
        email = super().clean_email()
        # Only the invited address can accept: refuse any other here, before an
        # account is made, rather than fail (500) once it exists.
        if self.invitation is None or email.lower() != self.invitation.email.lower():
            raise forms.ValidationError("Sign up with the email address the invitation was sent to.")
        return email

    def clean(self) -> dict:
        cleaned = super().clean()
        # allauth validates against a brand-new user, who belongs to no company yet, so
        # the inviting company's own minimum (vouch.guard) is checked here.
        password = cleaned.get("password1")
        minimum = company_min_password_length(self.invitation.company) if self.invitation is not None else None
        if password and minimum and len(password) < minimum:
            self.add_error(
                "password1",
                forms.ValidationError(
                    f"{self.invitation.company.name} requires passwords of at least {minimum} characters "
                    f"(this one has {len(password)}).",
                    code="company_password_too_short",
                ),
            )
        return cleaned

    def signup(self, request, user) -> None:
        invitations.accept_pending_from_session(request, user)


class VouchSignupView(SignupView):
    """Company signup, or, with an invitation pending in the session, joining."""

    def get_form_class(self):
        self.invitation = invitations.pending_from_session(self.request)
        if self.invitation is not None:
            return InvitedSignupForm
        return super().get_form_class()

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        if getattr(self, "invitation", None) is not None:
            kwargs["invitation"] = self.invitation
        return kwargs

    def form_valid(self, form):
        if getattr(form, "account_already_exists", False):
            # A new account costs an Argon2 hash; the "already registered" answer must
            # cost the same, or its speed tells that the address has an account.
            make_password(form.cleaned_data.get("password1"))
        return super().form_valid(form)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["invitation"] = invitations.pending_from_session(self.request)
        return context


signup = VouchSignupView.as_view()
