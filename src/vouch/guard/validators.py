"""Password validator for companies' own minimum lengths (P19).

Django's MinimumLengthValidator holds the installation's minimum for everyone; this one
adds the longest minimum set by any company the user is an active member of. Django
passes the user on password change and reset (and allauth on signup, where a brand-new
account has no companies yet: the installation's minimum applies)."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class CompanyMinimumLengthValidator:
    def validate(self, password: str, user=None) -> None:
        from vouch.guard.company_security import min_password_length

        minimum = min_password_length(user)
        if minimum and len(password) < minimum:
            raise ValidationError(
                f"Your company requires passwords of at least {minimum} characters.",
                code="company_password_too_short",
                params={"min_length": minimum},
            )

    def get_help_text(self) -> str:
        return "Your company may require a longer password."
