"""The company's workflow settings: reminders, replacing referees, retention, who sees
which requests, the defaults of a new request, and the known office networks the fraud
signals take into account. Admins and owners only."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.activity import services as activity
from vouch.activity.services import Kind
from vouch.references.company_settings.forms import WorkflowSettingsForm
from vouch.references.privacy import retention
from vouch.references.request_models import WorkflowSettings
from vouch.tenancy import company_db

FIELDS = (
    "reminder_days",
    "replace_after_days",
    "retention_months",
    "recruiters_see_all",
    "default_deadline_days",
    "default_referees",
    "known_office_networks",
)


def save_settings(values: dict, *, actor) -> list[str]:
    """Save the cleaned values; returns the names of the settings that changed (and
    logs them, with old and new values: none is personal data)."""
    with company_db.atomic():
        settings = WorkflowSettings.objects.select_for_update().filter(pk=1).first() or WorkflowSettings.current()
        changes = {
            field: {"from": getattr(settings, field), "to": values[field]}
            for field in FIELDS
            if getattr(settings, field) != values[field]
        }
        if not changes:
            return []
        for field in changes:
            setattr(settings, field, values[field])
        settings.updated_by_id = company_db.actor_id(actor)
        settings.save()
        activity.log(
            Kind.WORKFLOW_SETTINGS_CHANGED,
            f"Workflow settings changed: {', '.join(field.replace('_', ' ') for field in changes)}.",
            actor=actor,
            details=changes,
        )
    return list(changes)


@company_action(Action.MANAGE_WORKFLOW)
def workflow_settings(request: HttpRequest) -> HttpResponse:
    current = WorkflowSettings.current()
    if request.method == "POST":
        form = WorkflowSettingsForm(request.POST)
        if form.is_valid():
            changed = save_settings(form.cleaned_data, actor=request.user)
            messages.success(request, "Workflow settings saved." if changed else "Nothing changed.")
            if "retention_months" in changed:
                past = retention.due().count()
                if past:
                    messages.warning(
                        request,
                        f"{past} closed request{'s are' if past != 1 else ' is'} now past the retention period "
                        "and will be deleted, with everything under them, within a day.",
                    )
            return redirect("workflow_settings")
        status = 400
    else:
        form = WorkflowSettingsForm(initial=WorkflowSettingsForm.initial_from(current))
        status = 200
    return render(request, "references/workflow_settings.html", {"form": form, "settings": current}, status=status)
