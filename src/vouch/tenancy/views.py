from __future__ import annotations

import uuid

from allauth.account.decorators import reauthentication_required
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import dateformat
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.tenancy import deletion
from vouch.tenancy.forms import CompanyNameForm, DeleteCompanyForm
from vouch.tenancy.services import rename_company, switch_company


@login_required
@require_POST
def switch(request: VouchRequest) -> HttpResponse:
    raw = request.POST.get("company", "")
    try:
        company_id = str(uuid.UUID(raw))
    except ValueError:
        raise Http404 from None
    membership = switch_company(request.session, request.user, company_id)  # type: ignore[arg-type]  # typing debt
    if membership is None:
        # Same answer as a company that does not exist: no hint that it does.
        raise Http404
    messages.success(request, f"You are now working in {membership.company.name}.")
    return redirect("dashboard")


def company_backups(company_id) -> dict:
    from vouch.backups.views import company_summary

    return company_summary(company_id)


def _settings_page(request: CompanyRequest, *, name_form=None, delete_form=None, status: int = 200) -> HttpResponse:
    company = request.company
    can_delete = policy.can(request.membership, Action.DELETE_COMPANY)
    return render(
        request,
        "tenancy/settings.html",
        {
            "name_form": name_form or CompanyNameForm(initial={"name": company.name}),
            "can_delete": can_delete,
            "delete_form": (delete_form or DeleteCompanyForm(company=company)) if can_delete else None,
            "grace_days": deletion.grace_period().days,
            # Owners see their company's last backup and restore drill.
            "backups": company_backups(company.pk) if can_delete else None,
        },
        status=status,
    )


@company_action(Action.MANAGE_SETTINGS)
def company_settings(request: CompanyRequest) -> HttpResponse:
    """Name (changeable) and region (shown, never changeable); for owners, deletion."""
    if request.method != "POST":
        return _settings_page(request)
    # Only the name is read from the form: a forged "region" field is simply ignored.
    form = CompanyNameForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, name_form=form, status=400)
    try:
        rename_company(request.company, request.membership, form.cleaned_data["name"])
    except ValueError as exc:
        form.add_error("name", str(exc))
        return _settings_page(request, name_form=form, status=400)
    messages.success(request, "Company name saved.")
    return redirect("company_settings")


@require_POST
@company_action(Action.DELETE_COMPANY)
@reauthentication_required
def company_delete(request: CompanyRequest) -> HttpResponse:
    """Schedule the company's deletion: owners only, after signing in again (allauth
    stores this POST and replays it once the password is confirmed), with the
    company's name typed out."""
    form = DeleteCompanyForm(request.POST, company=request.company)
    if not form.is_valid():
        return _settings_page(request, delete_form=form, status=400)
    try:
        company = deletion.schedule_deletion(request.company, request.membership, request=request)
    except deletion.DeletionError as exc:
        messages.error(request, str(exc))
        return redirect("company_settings")
    messages.success(
        request,
        f"{company.name} will be deleted on {dateformat.format(company.delete_after, 'd F Y')}. "  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        "Every owner has been emailed; any owner can cancel until then.",
    )
    return redirect("company_settings")


@require_POST
@company_action(Action.DELETE_COMPANY)
def company_delete_cancel(request: CompanyRequest) -> HttpResponse:
    # No re-authentication: cancelling keeps data, it never loses any.
    try:
        company = deletion.cancel_deletion(request.company, request.membership, request=request)
    except deletion.DeletionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Deletion cancelled. {company.name} carries on as before.")
    return redirect("company_settings")
