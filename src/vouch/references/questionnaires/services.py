"""Questionnaire templates: the one validator of question lists, the built-in library,
and the services that create, version, copy and archive the current company's
templates. Every service needs a company context; callers ask the role policy first.

A question is a dict::

    {"id": "reliability", "type": "rating", "prompt": "...", "help": "...", "required": True,
     "scale": {"min": 1, "max": 5, "low_label": "Poor", "high_label": "Excellent"}}

``choices`` (2–10 unique non-empty strings) only for "single" and "multiple"; ``scale``
only for "rating"; ``help`` optional. Nothing else is accepted: a version is what a
referee will be shown, so it is checked strictly before it is stored."""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone

from vouch.activity import services as activity
from vouch.activity.services import Kind
from vouch.core.db import PreparedRows
from vouch.references.models import Questionnaire, QuestionnaireVersion
from vouch.references.questionnaires.builtin import BUILTINS
from vouch.tenancy import company_db

TYPES = {
    "text": "Free text",
    "rating": "Rating scale",
    "yes_no": "Yes / no",
    "single": "Single choice",
    "multiple": "Multiple choice",
}
CHOICE_TYPES = ("single", "multiple")
SCALE_MAXIMA = (5, 10)
MAX_QUESTIONS = 50
MIN_CHOICES, MAX_CHOICES = 2, 10
MAX_PROMPT = 500
MAX_HELP = 500
MAX_CHOICE = 200
MAX_LABEL = 50
QUESTION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
COMMON_KEYS = {"id", "type", "prompt", "help", "required"}
SCALE_KEYS = {"min", "max", "low_label", "high_label"}
# Built-ins get fixed uuids, so /questionnaires/<uuid>/ names both kinds.
BUILTIN_NAMESPACE = uuid.UUID("0b7f7a0e-4b3e-5c1a-9e58-6f1d2a3c4b5d")


@dataclass(frozen=True)
class Problem:
    index: int | None  # the question's position (0-based), None for the list as a whole
    message: str
    # The part of the question it is about ("prompt", "choices", "low_label", ...), "" for
    # the question as a whole: the builder shows each message by its own field.
    field: str = ""

    def __str__(self) -> str:
        return self.message if self.index is None else f"Question {self.index + 1}: {self.message}"


def _text(value, limit: int) -> str | None:
    """The stripped string, or None if it is not a string or too long."""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        return None
    return value.strip()


def _question_problems(question) -> list[tuple[str, str]]:
    """(field, message) for each problem with one question."""
    if not isinstance(question, dict):
        return [("", "must be an object.")]
    found: list[tuple[str, str]] = []
    kind = question.get("type")
    if kind not in TYPES:
        return [("type", f"choose a question type ({', '.join(TYPES)}).")]
    allowed = set(COMMON_KEYS)
    if kind in CHOICE_TYPES:
        allowed.add("choices")
    if kind == "rating":
        allowed.add("scale")
    extra = sorted(str(key) for key in question if key not in allowed)
    if extra:
        found.append(("", f"{', '.join(extra)} not allowed for a {TYPES[kind].lower()} question."))
    qid = question.get("id")
    if not isinstance(qid, str) or not QUESTION_ID.fullmatch(qid):
        found.append(("id", "the id must be 1–32 lower-case letters, digits, - or _."))
    prompt = _text(question.get("prompt"), MAX_PROMPT)
    if not prompt:
        found.append(("prompt", f"write the question (at most {MAX_PROMPT} characters)."))
    if "help" in question and _text(question["help"], MAX_HELP) is None:
        found.append(("help", f"the help text must be at most {MAX_HELP} characters."))
    if not isinstance(question.get("required"), bool):
        found.append(("required", "say whether an answer is required."))
    if kind in CHOICE_TYPES:
        found.extend(("choices", message) for message in _choice_problems(question.get("choices")))
    if kind == "rating":
        found.extend(_scale_problems(question.get("scale")))
    return found


def _choice_problems(choices) -> list[str]:
    if not isinstance(choices, list) or not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        return [f"give between {MIN_CHOICES} and {MAX_CHOICES} choices."]
    cleaned = [_text(choice, MAX_CHOICE) for choice in choices]
    if any(not choice for choice in cleaned):
        return [f"every choice needs text (at most {MAX_CHOICE} characters)."]
    if any(choice != original for choice, original in zip(cleaned, choices, strict=True)):
        return ["choices must not start or end with spaces."]
    if len({choice.casefold() for choice in cleaned}) != len(cleaned):  # type: ignore[union-attr]  # typing debt: an Optional not narrowed here
        return ["each choice must be different."]
    return []


def _scale_problems(scale) -> list[tuple[str, str]]:
    if not isinstance(scale, dict) or set(scale) != SCALE_KEYS:
        return [("", "a rating needs a scale with min, max, low_label and high_label.")]
    found = []
    # bool is an int in Python; a scale of True..False is not a scale.
    if scale["min"] != 1 or isinstance(scale["min"], bool) or not isinstance(scale["min"], int):
        found.append(("", "a rating scale starts at 1."))
    if scale["max"] not in SCALE_MAXIMA or isinstance(scale["max"], bool) or not isinstance(scale["max"], int):
        found.append(("scale_max", "a rating scale goes up to 5 or 10."))
    for key, end in (("low_label", "lowest"), ("high_label", "highest")):
        if not _text(scale[key], MAX_LABEL):
            found.append((key, f"label the {end} rating (at most {MAX_LABEL} characters)."))
    return found


def problems(questions) -> list[Problem]:
    """Every problem with a question list, each placed at its question (and field) where it has one."""
    if not isinstance(questions, list):
        return [Problem(None, "The questions must be a list.")]
    if not questions:
        return [Problem(None, "Add at least one question.")]
    found: list[Problem] = []
    if len(questions) > MAX_QUESTIONS:
        found.append(Problem(None, f"A questionnaire can have at most {MAX_QUESTIONS} questions."))
    seen: set[str] = set()
    for index, question in enumerate(questions[:MAX_QUESTIONS]):
        found.extend(Problem(index, message, part) for part, message in _question_problems(question))
        qid = question.get("id") if isinstance(question, dict) else None
        if isinstance(qid, str):
            if qid in seen:
                found.append(Problem(index, f'the id "{qid}" is used by another question.', "id"))
            seen.add(qid)
    return found


def validate(questions) -> list[str]:
    """The problems with a question list as sentences; empty when it may be stored."""
    return [str(problem) for problem in problems(questions)]


def next_question_id(questions: list[dict]) -> str:
    """A short id no question in the list has: q1, q2, ..."""
    taken = {q.get("id") for q in questions if isinstance(q, dict)}
    number = len(questions) + 1
    while f"q{number}" in taken:
        number += 1
    return f"q{number}"


# --- The built-in library -------------------------------------------------------------


@dataclass(frozen=True)
class Builtin:
    key: str
    name: str
    description: str
    questions: list[dict]

    @property
    def id(self) -> uuid.UUID:
        return builtin_id(self.key)

    pk = id


def builtin_id(key: str) -> uuid.UUID:
    return uuid.uuid5(BUILTIN_NAMESPACE, key)


def builtins() -> list[Builtin]:
    return [
        Builtin(key, spec["name"], spec["description"], copy.deepcopy(spec["questions"]))
        for key, spec in BUILTINS.items()
    ]


def builtin(key_or_id: str | uuid.UUID) -> Builtin | None:
    """The built-in with this key or fixed uuid, or None (only its questions copied)."""
    for key, spec in BUILTINS.items():
        if key_or_id in (key, builtin_id(key)):
            return Builtin(key, spec["name"], spec["description"], copy.deepcopy(spec["questions"]))
    return None


# --- Company templates ----------------------------------------------------------------


def _check(questions: list[dict]) -> None:
    errors = validate(questions)
    if errors:
        raise ValidationError(errors)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("A questionnaire needs a name of at most 200 characters.")
    return name


def create_questionnaire(
    name: str, questions: list[dict], *, description: str = "", actor=None, copied_from: str = ""
) -> Questionnaire:
    """A new company template with its version 1; ``ValidationError`` for bad input."""
    name = _clean_name(name)
    _check(questions)
    with company_db.atomic():
        questionnaire = Questionnaire.objects.create(
            name=name,
            description=description.strip(),
            created_by_id=company_db.actor_id(actor),
            copied_from=copied_from,
        )
        QuestionnaireVersion.objects.create(
            questionnaire=questionnaire, number=1, questions=questions, created_by_id=company_db.actor_id(actor)
        )
        activity.log(
            Kind.QUESTIONNAIRE_CREATED,
            f"Questionnaire “{name}” created.",
            actor=actor,
            details={"questionnaire": str(questionnaire.pk), "copied_from": copied_from},
        )
    return questionnaire


def copy_of(source: Builtin | Questionnaire, *, actor=None) -> Questionnaire:
    """A company template starting from a built-in or another template (its current questions)."""
    if isinstance(source, Builtin):
        return create_questionnaire(
            source.name, source.questions, description=source.description, actor=actor, copied_from=source.key
        )
    return create_questionnaire(
        f"Copy of {source.name}"[:200],
        current_version(source).questions,
        description=source.description,
        actor=actor,
        copied_from=str(source.pk),
    )


def current_version(questionnaire: Questionnaire) -> QuestionnaireVersion:
    return questionnaire.versions.order_by("-number").first()  # type: ignore[return-value]  # typing debt: an Optional not narrowed here


def update_questionnaire(
    questionnaire: Questionnaire, *, name: str, description: str, questions: list[dict], actor=None
) -> QuestionnaireVersion | None:
    """Save an edit: a new version when the questions changed (the old ones stay as they
    were), the name and description in place. Returns the new version, or None."""
    name = _clean_name(name)
    _check(questions)
    description = description.strip()
    with company_db.atomic():
        # Locked, so two editors saving at once get versions n+1 and n+2, not a clash.
        locked = Questionnaire.objects.select_for_update().get(pk=questionnaire.pk)
        latest = current_version(locked)
        version = None
        if latest is None or latest.questions != questions:
            version = QuestionnaireVersion.objects.create(
                questionnaire=locked,
                number=(latest.number if latest else 0) + 1,
                questions=questions,
                created_by_id=company_db.actor_id(actor),
            )
            activity.log(
                Kind.QUESTIONNAIRE_VERSION_ADDED,
                f"Questionnaire “{name}” saved as version {version.number}.",
                actor=actor,
                details={"questionnaire": str(locked.pk), "version": version.number},
            )
        if (locked.name, locked.description) != (name, description):
            locked.name, locked.description = name, description
            locked.save(update_fields=["name", "description", "updated_at"])
            if version is None:
                activity.log(
                    Kind.QUESTIONNAIRE_CHANGED,
                    f"Questionnaire “{name}” renamed or described.",
                    actor=actor,
                    details={"questionnaire": str(locked.pk)},
                )
    questionnaire.refresh_from_db()
    return version


def set_archived(questionnaire: Questionnaire, archived: bool, *, actor=None) -> bool:
    """Archive (hide from the choice for new requests) or restore; versions are kept.
    Returns whether anything changed."""
    if questionnaire.is_archived == archived:
        return False
    with company_db.atomic():
        questionnaire.archived_at = timezone.now() if archived else None
        questionnaire.save(update_fields=["archived_at", "updated_at"])
        activity.log(
            Kind.QUESTIONNAIRE_ARCHIVED if archived else Kind.QUESTIONNAIRE_RESTORED,
            f"Questionnaire “{questionnaire.name}” {'archived' if archived else 'restored'}.",
            actor=actor,
            details={"questionnaire": str(questionnaire.pk)},
        )
    return True


def company_templates() -> QuerySet[Questionnaire]:
    """The company's own templates (archived too), not Vouch's snapshots of built-ins."""
    return Questionnaire.objects.filter(builtin_key="")


# --- For requests -----------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str  # "builtin:<key>" or the template's uuid
    label: str


def choices() -> list[Choice]:
    """What a new request may be sent with: the built-ins and the company's templates
    that are not archived."""
    found = [Choice(f"builtin:{key}", f"{spec['name']} (built-in)") for key, spec in BUILTINS.items()]
    found += [Choice(str(q.pk), q.name) for q in company_templates().filter(archived_at__isnull=True)]
    return found


# Every request sent with a built-in reads its snapshot's latest version: compiled once
# (vouch.core.db), the whole row, so the version is built as the ORM builds it.
VERSION_FIELDS = tuple(field.attname for field in QuestionnaireVersion._meta.concrete_fields)
_latest_builtin_version = PreparedRows(
    lambda key: (
        QuestionnaireVersion.objects.filter(questionnaire__builtin_key=key)
        .order_by("-number")
        .values_list(*VERSION_FIELDS)
    ),
    paged=True,
    key="(not a built-in key)",
)


def _stored_builtin_version(item: Builtin) -> QuestionnaireVersion | None:
    """The snapshot's latest version when it holds the code's questions now: the common
    case, one read and no savepoint (a version, once made, never changes)."""
    alias = company_db.alias()
    rows = _latest_builtin_version.fetch(using=alias, limit=1, key=item.key)
    if not rows:
        return None
    latest = QuestionnaireVersion.from_db(alias, VERSION_FIELDS, rows[0])
    return latest if latest.questions == item.questions else None


def builtin_version(key: str, *, actor=None) -> QuestionnaireVersion:
    """The company's stored snapshot of a built-in's current questions, made (or a new
    version added, when the code's questions changed) on first use."""
    item = builtin(key)
    if item is None:
        raise LookupError(key)
    stored = _stored_builtin_version(item)
    if stored is not None:
        return stored
    try:
        return _builtin_version(item, actor)
    except IntegrityError:
        # Another request made the snapshot (or its new version) at the same moment:
        # the unique constraints kept one, which this second look finds.
        return _builtin_version(item, actor)


def _builtin_version(item: Builtin, actor) -> QuestionnaireVersion:
    with company_db.atomic():
        snapshot = Questionnaire.objects.select_for_update().filter(builtin_key=item.key).first()
        if snapshot is None:
            snapshot = Questionnaire.objects.create(
                name=item.name, description=item.description, builtin_key=item.key, copied_from=item.key
            )
        latest = current_version(snapshot)
        if latest is not None and latest.questions == item.questions:
            return latest
        return QuestionnaireVersion.objects.create(
            questionnaire=snapshot,
            number=(latest.number if latest else 0) + 1,
            questions=item.questions,
            created_by_id=company_db.actor_id(actor),
        )


def version_for_request(choice: str, *, actor=None) -> QuestionnaireVersion:
    """The version a request sent now with ``choice`` (a :class:`Choice` value) pins.
    ``LookupError`` for an unknown, archived or malformed choice."""
    if choice.startswith("builtin:"):
        return builtin_version(choice.removeprefix("builtin:"), actor=actor)
    try:
        pk = uuid.UUID(choice)
    except ValueError:
        raise LookupError(choice) from None
    questionnaire = company_templates().filter(pk=pk, archived_at__isnull=True).first()
    if questionnaire is None:
        raise LookupError(choice)
    return current_version(questionnaire)
