"""Questionnaires: what a request can be sent with (the built-ins and the company's own
templates), and one of them with its questions. Scope ``questionnaires:read``."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router, Schema

from vouch.api.auth import need
from vouch.references.models import Questionnaire
from vouch.references.questionnaires import services as questionnaires
from vouch.tenancy.lookups import record_miss

router = Router()
SCOPE = "questionnaires:read"


class QuestionnaireSummary(Schema):
    id: str
    name: str
    builtin: bool


class QuestionnaireDetail(Schema):
    id: str
    name: str
    description: str
    builtin: bool
    archived: bool
    version: int | None
    questions: list[dict[str, Any]]


@router.get("", response=list[QuestionnaireSummary], summary="List questionnaires (questionnaires:read)")
def list_questionnaires(request: HttpRequest) -> list[QuestionnaireSummary]:
    """The questionnaires a new request may be sent with: the built-ins
    (``builtin:<key>``) and the company's templates that are not archived."""
    need(request, SCOPE)
    return [
        QuestionnaireSummary(
            id=choice.value, name=choice.label.removesuffix(" (built-in)"), builtin=choice.value.startswith("builtin:")
        )
        for choice in questionnaires.choices()
    ]


@router.get("/{questionnaire_id}", response=QuestionnaireDetail, summary="Read a questionnaire (questionnaires:read)")
def read_questionnaire(request: HttpRequest, questionnaire_id: str) -> QuestionnaireDetail:
    """A questionnaire with its current questions; ``questionnaire_id`` as listed."""
    need(request, SCOPE)
    if questionnaire_id.startswith("builtin:"):
        item = questionnaires.builtin(questionnaire_id.removeprefix("builtin:"))
        if item is None:
            raise Http404
        return QuestionnaireDetail(
            id=questionnaire_id,
            name=item.name,
            description=item.description,
            builtin=True,
            archived=False,
            version=None,
            questions=item.questions,
        )
    try:
        pk = uuid.UUID(questionnaire_id)
    except ValueError:
        raise Http404 from None
    found = questionnaires.company_templates().filter(pk=pk).first()
    if found is None:
        record_miss(request, Questionnaire)  # type: ignore[arg-type]
        raise Http404
    version = questionnaires.current_version(found)
    return QuestionnaireDetail(
        id=str(found.pk),
        name=found.name,
        description=found.description,
        builtin=False,
        archived=found.archived_at is not None,
        version=version.number if version else None,
        questions=version.questions if version else [],
    )
