"""Company settings forms. There is deliberately no region field anywhere here: a
company's region is chosen at signup and no member can change it (P2)."""

from __future__ import annotations

from django import forms

from vouch.core.text import SingleLineField
from vouch.tenancy.models import Company


class CompanyNameForm(forms.Form):
    name = SingleLineField(label="Company name", max_length=Company._meta.get_field("name").max_length)


class DeleteCompanyForm(forms.Form):
    confirm_name = SingleLineField(
        label="Type the company's name to confirm",
        max_length=200,
        help_text="Exactly as shown above, capitals included.",
    )

    def __init__(self, *args, company: Company, **kwargs) -> None:
        self.company = company
        super().__init__(*args, **kwargs)

    def clean_confirm_name(self) -> str:
        # CharField has already stripped surrounding spaces; the rest must match exactly,
        # so a slip of the keyboard (or the name of another company) deletes nothing.
        value = self.cleaned_data["confirm_name"]
        if value != self.company.name:
            raise forms.ValidationError("That is not this company's name. Type it exactly as shown.")
        return value
