"""The questionnaire pages. Thin: parse, check the role, call ``questionnaires``, render.

Built-in templates have fixed uuids, so /questionnaires/<uuid>/ shows either kind;
built-ins are read-only (copy one to change it)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.references import questionnaires as q
from vouch.references.models import Questionnaire
from vouch.references.questionnaire_forms import Builder
from vouch.tenancy.lookups import company_object_or_404


def _template(request: CompanyRequest, questionnaire_id: UUID) -> Questionnaire:
    # Vouch's own snapshots of built-ins are not company templates: not reachable here.
    return company_object_or_404(request, q.company_templates(), pk=questionnaire_id)


@company_action(Action.VIEW_QUESTIONNAIRES)
def questionnaire_list(request: CompanyRequest) -> HttpResponse:
    templates = list(q.company_templates().order_by("name", "id"))
    return render(
        request,
        "references/questionnaires/list.html",
        {
            "builtins": q.builtins(),
            "active": [t for t in templates if not t.is_archived],
            "archived": [t for t in templates if t.is_archived],
            "can_edit": policy.can(request.membership, Action.EDIT_QUESTIONNAIRES),
        },
    )


def _builder_page(request: CompanyRequest, builder: Builder, questionnaire: Questionnaire | None, status: int):
    return render(
        request,
        "references/questionnaires/builder.html",
        builder.context() | {"questionnaire": questionnaire},
        status=status,
    )


@company_action(Action.EDIT_QUESTIONNAIRES)
def questionnaire_new(request: CompanyRequest) -> HttpResponse:
    builder = Builder(request.POST if request.method == "POST" else None)
    if not builder.bound or builder.apply():
        return _builder_page(request, builder, None, 200)
    if builder.is_valid():
        try:
            questionnaire = q.create_questionnaire(
                builder.details.cleaned_data["name"],
                builder.questions(),
                description=builder.details.cleaned_data["description"],
                actor=request.user,
            )
        except ValidationError as exc:  # pragma: no cover - the builder checked the same rules
            builder.errors.extend(exc.messages)
        else:
            messages.success(request, f"{questionnaire.name} created.")
            return redirect("questionnaire_detail", questionnaire_id=questionnaire.pk)
    return _builder_page(request, builder, None, 400)


@company_action(Action.EDIT_QUESTIONNAIRES)
def questionnaire_edit(request: CompanyRequest, questionnaire_id: UUID) -> HttpResponse:
    if q.builtin(questionnaire_id) is not None:
        messages.info(request, "Built-in questionnaires cannot be changed: use one as a starting point.")
        return redirect("questionnaire_detail", questionnaire_id=questionnaire_id)
    questionnaire = _template(request, questionnaire_id)
    if request.method == "POST":
        builder = Builder(request.POST)
    else:
        builder = Builder(
            None,
            initial={"name": questionnaire.name, "description": questionnaire.description},
            questions=q.current_version(questionnaire).questions,
        )
    if not builder.bound or builder.apply():
        return _builder_page(request, builder, questionnaire, 200)
    if builder.is_valid():
        try:
            version = q.update_questionnaire(
                questionnaire, **builder.details.cleaned_data, questions=builder.questions(), actor=request.user
            )
        except ValidationError as exc:  # pragma: no cover - the builder checked the same rules
            builder.errors.extend(exc.messages)
        else:
            messages.success(request, f"Saved as version {version.number}." if version else "Saved.")
            return redirect("questionnaire_detail", questionnaire_id=questionnaire.pk)
    return _builder_page(request, builder, questionnaire, 400)


@company_action(Action.VIEW_QUESTIONNAIRES)
def questionnaire_detail(request: CompanyRequest, questionnaire_id: UUID) -> HttpResponse:
    can_edit = policy.can(request.membership, Action.EDIT_QUESTIONNAIRES)
    item = q.builtin(questionnaire_id)
    if item is not None:
        return render(
            request,
            "references/questionnaires/detail.html",
            {"builtin": item, "name": item.name, "description": item.description, "questions": item.questions}
            | {"can_edit": can_edit, "questionnaire_id": item.id},
        )
    questionnaire = _template(request, questionnaire_id)
    versions = list(questionnaire.versions.order_by("-number"))
    shown = versions[0]
    wanted = request.GET.get("version", "")
    if wanted:
        match = [v for v in versions if wanted.isascii() and wanted.isdigit() and str(v.number) == wanted]
        if not match:
            return render(
                request,
                "web/error.html",
                {"status": 404, "title": "No such version", "message": "This questionnaire has no such version."},
                status=404,
            )
        shown = match[0]
    return render(
        request,
        "references/questionnaires/detail.html",
        {
            "questionnaire": questionnaire,
            "questionnaire_id": questionnaire.pk,
            "name": questionnaire.name,
            "description": questionnaire.description,
            "version": shown,
            "is_current": shown.number == versions[0].number,
            "versions": versions,
            "questions": shown.questions,
            "can_edit": can_edit,
        },
    )


@require_POST
@company_action(Action.EDIT_QUESTIONNAIRES)
def questionnaire_copy(request: CompanyRequest, questionnaire_id: UUID) -> HttpResponse:
    source = q.builtin(questionnaire_id) or _template(request, questionnaire_id)
    questionnaire = q.copy_of(source, actor=request.user)
    messages.success(request, f"{questionnaire.name} created from {source.name}: change it as you need.")
    return redirect("questionnaire_edit", questionnaire_id=questionnaire.pk)


def _set_archived(request: CompanyRequest, questionnaire_id: UUID, archived: bool) -> HttpResponse:
    if q.builtin(questionnaire_id) is not None:
        messages.info(request, "Built-in questionnaires are always available.")
        return redirect("questionnaire_detail", questionnaire_id=questionnaire_id)
    questionnaire = _template(request, questionnaire_id)
    if q.set_archived(questionnaire, archived, actor=request.user):
        messages.success(request, f"{questionnaire.name} {'archived' if archived else 'restored'}.")
    return redirect("questionnaire_detail", questionnaire_id=questionnaire.pk)


@require_POST
@company_action(Action.EDIT_QUESTIONNAIRES)
def questionnaire_archive(request: CompanyRequest, questionnaire_id: UUID) -> HttpResponse:
    return _set_archived(request, questionnaire_id, True)


@require_POST
@company_action(Action.EDIT_QUESTIONNAIRES)
def questionnaire_restore(request: CompanyRequest, questionnaire_id: UUID) -> HttpResponse:
    return _set_archived(request, questionnaire_id, False)
