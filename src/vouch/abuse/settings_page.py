"""The unusual-use thresholds on the company's security settings page (owners only).

Shown as a section of guard's page (``vouch.guard.security_views.page_sections``, filled
in ``AbuseConfig.ready``) with a form of its own, posted to ``abuse_thresholds``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from vouch.abuse import thresholds
from vouch.abuse.rules import RULES, Response
from vouch.accounts.decorators import company_action, reauthentication_required
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.guard import company_security, security_views
from vouch.guard.security_forms import CompanySecurityForm

RESPONSES = {
    Response.FLAG: "the owners are emailed",
    Response.THROTTLE: "the account's changes pause for 15 minutes; the owners are emailed",
    Response.REAUTH: "the account must enter its password again; the owners are emailed",
    Response.SUSPEND: "the account is suspended; the owners are emailed",
}


class ThresholdsForm(forms.Form):
    def __init__(self, *args, company_id=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        current = thresholds.overrides(company_id) if company_id is not None else {}
        for rule in RULES.values():
            self.fields[rule.name] = forms.IntegerField(
                label=rule.label,
                initial=current.get(rule.name, rule.default),
                help_text=f"From {rule.low} to {rule.high}; default {rule.default}. "
                f"When reached: {RESPONSES[rule.response]}.",
                error_messages={"required": f"Enter a number from {rule.low} to {rule.high}."},
            )

    def clean(self):
        data = super().clean()
        for name, value in list(data.items()):
            try:
                thresholds.check(RULES[name], value)
            except thresholds.ThresholdError as error:
                self.add_error(name, str(error))
        return data


def section(request: HttpRequest) -> SafeString:
    """The section guard's page shows (owners reach that page only)."""
    form = getattr(request, "abuse_thresholds_form", None) or ThresholdsForm(company_id=request.company.pk)  # type: ignore[attr-defined]  # set by the company middleware
    return render_to_string("abuse/thresholds_section.html", {"thresholds_form": form}, request=request)


@require_POST
@company_action(Action.MANAGE_SECURITY)
@reauthentication_required
def save_thresholds(request: CompanyRequest) -> HttpResponse:
    form = ThresholdsForm(request.POST, company_id=request.company.pk)
    if not form.is_valid():
        request.abuse_thresholds_form = form  # type: ignore[attr-defined]  # read by section()
        row = company_security.for_company(request.company)
        return security_views.security_page(request, CompanySecurityForm.from_settings(row), status=400)
    changed = thresholds.save(request.company, request.membership, form.cleaned_data, request=request)
    messages.success(request, "Unusual-use limits saved." if changed else "Unusual-use limits unchanged.")
    return redirect("company_security")
