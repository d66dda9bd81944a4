"""The questionnaire pages. Thin: parse, check the role, call ``questionnaires``, render.

Built-in templates have fixed uuids, so /questionnaires/<uuid>/ shows either kind;
built-ins are read-only (copy one to change it).

The builder (new and edit) is one address each: its posts carry ``op`` (forms.Builder) and
are answered as a whole page, or, asked by htmx (HX-Request), as the part that changed: the
form (``_builder.html``), one question (``_question.html``, its type changed) or a check's
message slots (``_checked.html``, 422 when a message is shown). Nothing is stored before
Save, and saving an edit adds a version, so requests in flight keep theirs."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.references.models import Questionnaire
from vouch.references.questionnaires import services as q
from vouch.references.questionnaires.forms import Builder
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


def _builder_page(
    request: CompanyRequest, builder: Builder, questionnaire: Questionnaire | None, status: int, *, partial: bool
) -> HttpResponse:
    context = builder.context() | {"questionnaire": questionnaire, "action": request.path}
    if not partial:
        return render(request, "references/questionnaires/builder.html", context, status=status)
    response = render(request, "references/questionnaires/_builder.html", context | {"partial": True}, status=status)
    # Whatever asked (a button, the type select, a check), the whole form is what comes back.
    response["HX-Retarget"] = "#builder"
    response["HX-Reswap"] = "outerHTML"
    return response


def _build(
    request: CompanyRequest,
    builder: Builder,
    questionnaire: Questionnaire | None,
    save: Callable[[Builder], tuple[Questionnaire, str]],
) -> HttpResponse:
    """The builder's answer to a page load or a post, with or without htmx: the same
    operations and checks either way; htmx gets the part of the page that changed."""
    htmx = builder.bound and request.headers.get("HX-Request") == "true"
    if htmx and builder.op.startswith("check"):
        # htmx names the field typed in: only its message changes.
        slots = builder.check(request.headers.get("HX-Trigger-Name", "")[:100])
        row = builder.rows[builder.target] if builder.target is not None else None
        context = {"slots": slots, "index": builder.target, "row": row}
        fine = not any(message for _, message in slots) and not (row and row.errors)
        # 422 carries the messages; vouch.js swaps it like a 400 (data-swap-errors).
        return render(request, "references/questionnaires/_checked.html", context, status=200 if fine else 422)
    if not builder.bound or builder.apply():
        if htmx and builder.op == "retype" and builder.target is not None:
            context = builder.context() | builder.row_context(builder.target) | {"action": request.path}
            return render(request, "references/questionnaires/_question.html", context)
        return _builder_page(request, builder, questionnaire, 200, partial=htmx)
    if builder.is_valid():
        try:
            saved, notice = save(builder)
        except ValidationError as exc:  # pragma: no cover - the builder checked the same rules
            builder.errors.extend(exc.messages)
        else:
            messages.success(request, notice)
            url = reverse("questionnaire_detail", kwargs={"questionnaire_id": saved.pk})
            if htmx:
                response = HttpResponse()
                response["HX-Redirect"] = url
                return response
            return redirect(url)
    return _builder_page(request, builder, questionnaire, 422 if htmx else 400, partial=htmx)


@company_action(Action.EDIT_QUESTIONNAIRES)
def questionnaire_new(request: CompanyRequest) -> HttpResponse:
    def save(builder: Builder) -> tuple[Questionnaire, str]:
        questionnaire = q.create_questionnaire(
            builder.details.cleaned_data["name"],
            builder.questions(),
            description=builder.details.cleaned_data["description"],
            actor=request.user,
        )
        return questionnaire, f"{questionnaire.name} created."

    return _build(request, Builder(request.POST if request.method == "POST" else None), None, save)


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

    def save(builder: Builder) -> tuple[Questionnaire, str]:
        # A new version when the questions changed: requests already sent keep theirs.
        version = q.update_questionnaire(
            questionnaire, **builder.details.cleaned_data, questions=builder.questions(), actor=request.user
        )
        return questionnaire, f"Saved as version {version.number}." if version else "Saved."

    return _build(request, builder, questionnaire, save)


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
