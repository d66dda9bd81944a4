"""Questionnaire templates: the validator, the built-in library, copies, versions that
never change once stored, archiving, roles, other companies' templates, and the
builder's answers to damaged posts."""

from __future__ import annotations

import copy
import re
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.accounts.helpers import fast_company
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.references.models import Questionnaire, QuestionnaireVersion
from vouch.references.questionnaires import services as q

pytestmark = pytest.mark.django_db

TEXT = {"id": "strengths", "type": "text", "prompt": "What are their strengths?", "required": True}
YES_NO = {"id": "rehire", "type": "yes_no", "prompt": "Would you rehire them?", "help": "Be honest.", "required": False}
SINGLE = {"id": "context", "type": "single", "prompt": "How?", "required": True, "choices": ["Manager", "Peer"]}
MULTIPLE = {"id": "skills", "type": "multiple", "prompt": "Skills?", "required": False, "choices": ["A", "B", "C"]}
RATING = {
    "id": "reliability",
    "type": "rating",
    "prompt": "How reliable?",
    "required": True,
    "scale": {"min": 1, "max": 10, "low_label": "Not at all", "high_label": "Completely"},
}
GOOD = [TEXT, YES_NO, SINGLE, MULTIPLE, RATING]


def changed(question: dict, **values) -> dict:
    result = copy.deepcopy(question)
    for key, value in values.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def scaled(**values) -> dict:
    return changed(RATING, scale=RATING["scale"] | values)


def make(company, name: str = "Sales roles", questions=None, **extra) -> Questionnaire:
    with company_context(company):
        return q.create_questionnaire(name, copy.deepcopy(questions or GOOD), **extra)


# --- Validation -----------------------------------------------------------------------


def test_a_list_of_every_type_is_valid():
    assert q.validate(GOOD) == []
    assert q.validate([changed(RATING, scale=RATING["scale"] | {"max": 5})]) == []


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        ([], "at least one question"),
        ("not a list", "must be a list"),
        ({"id": "a"}, "must be a list"),
        (["text"], "must be an object"),
        ([changed(TEXT, type="essay")], "choose a question type"),
        ([changed(TEXT, type=...)], "choose a question type"),
        ([changed(TEXT, prompt="")], "write the question"),
        ([changed(TEXT, prompt="   ")], "write the question"),
        ([changed(TEXT, prompt=...)], "write the question"),
        ([changed(TEXT, prompt=7)], "write the question"),
        ([changed(TEXT, prompt="x" * 501)], "write the question"),
        ([changed(TEXT, help="x" * 501)], "help text"),
        ([changed(TEXT, help=None)], "help text"),
        ([changed(TEXT, required="yes")], "required"),
        ([changed(TEXT, required=...)], "required"),
        ([changed(TEXT, id="")], "the id must be"),
        ([changed(TEXT, id="Has Space")], "the id must be"),
        ([changed(TEXT, id="x" * 33)], "the id must be"),
        ([changed(TEXT, id=5)], "the id must be"),
        ([TEXT, changed(YES_NO, id="strengths")], "used by another question"),
        ([changed(TEXT, choices=["a", "b"])], "choices not allowed"),
        ([changed(YES_NO, scale=RATING["scale"])], "scale not allowed"),
        ([changed(TEXT, extra="x")], "extra not allowed"),
        ([changed(SINGLE, choices=["only one"])], "between 2 and 10"),
        ([changed(SINGLE, choices=[f"c{i}" for i in range(11)])], "between 2 and 10"),
        ([changed(SINGLE, choices=...)], "between 2 and 10"),
        ([changed(SINGLE, choices="a,b")], "between 2 and 10"),
        ([changed(MULTIPLE, choices=["a", ""])], "every choice needs text"),
        ([changed(MULTIPLE, choices=["a", "  "])], "every choice needs text"),
        ([changed(MULTIPLE, choices=["a", 2])], "every choice needs text"),
        ([changed(MULTIPLE, choices=["a", "b", "A"])], "each choice must be different"),
        ([changed(SINGLE, choices=["a", " b"])], "spaces"),
        ([changed(RATING, scale=...)], "needs a scale"),
        ([changed(RATING, scale=[1, 5])], "needs a scale"),
        ([changed(RATING, scale={"min": 1, "max": 5})], "needs a scale"),
        ([scaled(min=0)], "starts at 1"),
        ([scaled(min=True)], "starts at 1"),
        ([scaled(min="1")], "starts at 1"),
        ([scaled(max=7)], "up to 5 or 10"),
        ([scaled(max=100)], "up to 5 or 10"),
        ([scaled(max="5")], "up to 5 or 10"),
        ([scaled(max=5.0)], "up to 5 or 10"),
        ([scaled(low_label="")], "label the lowest rating"),
        ([scaled(high_label="x" * 51)], "label the highest rating"),
        ([scaled(extra=1)], "needs a scale"),
        ([TEXT] * 51, "at most 50"),
    ],
)
def test_invalid_questions_are_refused_with_a_reason(questions, expected):
    errors = q.validate(questions)
    assert errors, questions
    assert any(expected in error for error in errors), errors


def test_problems_name_their_question():
    found = q.problems([TEXT, changed(SINGLE, choices=["one"]), changed(RATING, prompt="")])
    assert {problem.index for problem in found} == {1, 2}
    assert q.validate([TEXT, changed(SINGLE, choices=["one"])]) == ["Question 2: give between 2 and 10 choices."]


# --- The built-in library -------------------------------------------------------------


def test_the_built_in_library_is_valid_and_complete():
    items = q.builtins()
    names = {item.name for item in items}
    assert {"General professional", "People manager", "Graduate / entry level", "Executive"} <= names
    for item in items:
        assert q.validate(item.questions) == [], item.key
        assert 6 <= len(item.questions) <= 10, item.key
        assert len({question["type"] for question in item.questions}) >= 3, item.key
        assert q.builtin(item.key).id == item.id == q.builtin(item.id).id
    assert len({item.id for item in items}) == len(items)


def test_built_ins_are_copies_callers_cannot_change():
    q.builtin("executive").questions.clear()
    assert q.builtin("executive").questions


def test_library_page_shows_built_ins_and_the_empty_state(client, members, company):
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("questionnaires")).content.decode()
    assert 'id="no-questionnaires"' in page
    for item in q.builtins():
        assert reverse("questionnaire_detail", args=[item.id]) in page
    assert reverse("questionnaire_new") not in page  # a viewer is not offered the builder
    detail = client.get(reverse("questionnaire_detail", args=[q.builtin("graduate").id]))
    assert detail.status_code == 200
    assert "Use as a starting point" not in detail.content.decode()
    assert "How quickly did they learn new things?" in detail.content.decode()


def test_use_a_built_in_as_a_starting_point(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    item = q.builtin("people-manager")
    page = client.get(reverse("questionnaire_detail", args=[item.id])).content.decode()
    assert "Use as a starting point" in page
    response = client.post(reverse("questionnaire_copy", args=[item.id]))
    assert response.status_code == 302
    with company_context(company):
        copied = Questionnaire.objects.get()
        assert response["Location"] == reverse("questionnaire_edit", args=[copied.pk])
        assert (copied.name, copied.copied_from, copied.builtin_key) == ("People manager", "people-manager", "")
        version = copied.versions.get()
        assert (version.number, version.questions) == (1, item.questions)
        assert version.created_by_id == members[Role.RECRUITER].user_id
        assert Entry.objects.filter(action="questionnaire_created").count() == 1
    # Built-ins themselves are read-only.
    edit = client.get(reverse("questionnaire_edit", args=[item.id]))
    assert edit.status_code == 302 and edit["Location"] == reverse("questionnaire_detail", args=[item.id])
    assert client.post(reverse("questionnaire_archive", args=[item.id])).status_code == 302
    assert q.builtin("people-manager") is not None


# --- Building and versions ------------------------------------------------------------


def post_of(name: str, questions: list[dict], op: str = "save", description: str = "") -> dict:
    data = {"name": name, "description": description, "count": str(len(questions)), "op": op}
    for index, question in enumerate(questions):
        prefix = f"q-{index}-"
        data[prefix + "id"] = question["id"]
        data[prefix + "type"] = question["type"]
        data[prefix + "prompt"] = question["prompt"]
        data[prefix + "help"] = question.get("help", "")
        if question["required"]:
            data[prefix + "required"] = "on"
        data[prefix + "choices"] = "\n".join(question.get("choices", []))
        scale = question.get("scale", {})
        data[prefix + "scale_max"] = str(scale.get("max", 5))
        data[prefix + "low_label"] = scale.get("low_label", "")
        data[prefix + "high_label"] = scale.get("high_label", "")
    return data


def test_recruiter_builds_a_questionnaire_through_the_page(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    assert client.get(reverse("questionnaire_new")).status_code == 200
    response = client.post(reverse("questionnaire_new"), post_of("Engineers", GOOD, description="For engineers"))
    assert response.status_code == 302, response.content.decode()[:2000]
    with company_context(company):
        questionnaire = Questionnaire.objects.get()
        assert response["Location"] == reverse("questionnaire_detail", args=[questionnaire.pk])
        assert questionnaire.description == "For engineers"
        assert q.current_version(questionnaire).questions == GOOD
    page = client.get(response["Location"]).content.decode()
    # The preview shows every type as a referee would see it.
    for question in GOOD:
        assert f'id="preview-{question["id"]}"' in page
    assert page.count('type="radio" name="p-reliability"') == 10
    assert "Not at all" in page and "Completely" in page


def test_builder_buttons_add_remove_and_move_without_saving(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    url = reverse("questionnaire_new")
    added = client.post(url, post_of("Draft", [TEXT], op="add"))
    assert added.status_code == 200
    assert 'name="q-1-type"' in added.content.decode()
    assert 'value="q2"' in added.content.decode()  # a fresh id for the new question
    moved = client.post(url, post_of("Draft", [TEXT, YES_NO], op="down-0")).content.decode()
    assert moved.index('value="Would you rehire them?"') < moved.index('value="What are their strengths?"')
    removed = client.post(url, post_of("Draft", [TEXT, YES_NO], op="remove-0")).content.decode()
    assert "What are their strengths?" not in removed and 'name="q-1-type"' not in removed
    stale = client.post(url, post_of("Draft", [TEXT], op="remove-9"))
    assert stale.status_code == 200
    with company_context(company):
        assert not Questionnaire.objects.exists()


def test_editing_adds_a_version_and_the_old_one_stays(client, members, company):
    questionnaire = make(company, questions=[TEXT, SINGLE])
    with company_context(company):
        first = q.current_version(questionnaire)
    client.force_login(members[Role.ADMIN].user)
    edit_url = reverse("questionnaire_edit", args=[questionnaire.pk])
    form = client.get(edit_url).content.decode()
    assert 'value="What are their strengths?"' in form
    new_questions = [TEXT, changed(SINGLE, choices=["Manager", "Peer", "Client"]), RATING]
    response = client.post(edit_url, post_of("Sales roles v2", new_questions))
    assert response.status_code == 302
    with company_context(company):
        versions = list(questionnaire.versions.order_by("number"))
        assert [v.number for v in versions] == [1, 2]
        assert versions[0].questions == [TEXT, SINGLE]  # version 1 unchanged
        assert versions[0].pk == first.pk
        assert versions[1].questions == new_questions
        assert q.current_version(questionnaire).number == 2
        assert Questionnaire.objects.get().name == "Sales roles v2"
        assert Entry.objects.filter(action="questionnaire_version_added").get().details["version"] == 2
    detail_url = reverse("questionnaire_detail", args=[questionnaire.pk])
    old = client.get(detail_url, {"version": "1"}).content.decode()
    assert 'id="preview-reliability"' not in old and "an earlier version" in old
    assert 'id="preview-reliability"' in client.get(detail_url).content.decode()
    for bad in ("3", "0", "x", "１", "-1"):
        assert client.get(detail_url, {"version": bad}).status_code == 404
    # Saving the same questions again adds no version; a rename alone is logged.
    client.post(edit_url, post_of("Renamed", new_questions))
    with company_context(company):
        assert questionnaire.versions.count() == 2
        assert Entry.objects.filter(action="questionnaire_changed").count() == 1


def test_a_version_cannot_be_changed_or_deleted(company):
    questionnaire = make(company)
    with company_context(company):
        version = q.current_version(questionnaire)
        version.questions = [TEXT]
        with pytest.raises(ValueError, match="cannot be changed"):
            version.save()
        with pytest.raises(ValueError, match="cannot be deleted"):
            version.delete()
        assert QuestionnaireVersion.objects.get(pk=version.pk).questions == GOOD


def test_services_refuse_invalid_questions(company):
    with company_context(company), pytest.raises(ValidationError):
        q.create_questionnaire("Bad", [changed(TEXT, prompt="")])
    questionnaire = make(company)
    with company_context(company):
        with pytest.raises(ValidationError):
            q.update_questionnaire(questionnaire, name="x", description="", questions=[changed(SINGLE, choices=[])])
        with pytest.raises(ValidationError):
            q.create_questionnaire("  ", [TEXT])
        assert questionnaire.versions.count() == 1


@pytest.mark.parametrize(
    ("edit", "slot", "field_error"),
    [
        ({"q-0-prompt": ""}, "q-0-prompt-error", "Write the question"),
        ({"q-0-type": "essay"}, "q-0-type-error", "Choose a question type"),
        ({"q-1-choices": "only one"}, "q-1-choices-error", "Give between 2 and 10 choices"),
        ({"q-1-choices": "Same\nsame"}, "q-1-choices-error", "Each choice must be different"),
        ({"q-2-scale_max": "7"}, "q-2-scale_max-error", "A rating scale goes up to 5 or 10"),
        ({"q-2-scale_max": "\x00"}, "q-2-scale_max-error", "A rating scale goes up to 5 or 10"),
        ({"q-2-low_label": ""}, "q-2-low_label-error", "Label the lowest rating"),
        ({"q-2-high_label": " "}, "q-2-high_label-error", "Label the highest rating"),
        ({"q-1-id": "q-0-strengths", "q-0-id": "q-0-strengths"}, "q-1-errors", "<li>The id"),
        ({"q-0-id": "<script>"}, "q-0-errors", "<li>The id must be"),
    ],
)
def test_builder_errors_are_shown_next_to_their_field(client, members, company, edit, slot, field_error):
    client.force_login(members[Role.RECRUITER].user)
    data = post_of("Bad one", [TEXT, SINGLE, RATING]) | edit
    response = client.post(reverse("questionnaire_new"), data)
    assert response.status_code == 400
    page = response.content.decode()
    # In the field's own message slot, which the field names in aria-describedby.
    assert f'id="{slot}">{field_error}' in page, page[page.find(slot) - 200 : page.find(slot) + 200]
    if slot.endswith("-error"):
        field = slot.removesuffix("-error")
        assert re.search(rf'id="{field}"[^>]*aria-describedby="{slot}" aria-invalid="true"', page)
    assert "<script>" not in page
    with company_context(company):
        assert not Questionnaire.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"name": "x"},
        {"name": "x", "count": "many"},
        {"name": "x", "count": "-1"},
        {"name": "x", "count": "99999999999999999999"},
        {"name": "x", "count": "999"},
        {"name": "x", "count": "2", "q-0-type": "text"},
        {"name": "x", "count": "1", "q-0-type": "rating", "q-0-scale_max": "99999999999"},
        {"name": "x", "count": "1", "q-0-type": "text", "q-0-prompt": "x" * 100_000},
        {"name": "x" * 300, "count": "1", "q-0-type": "text", "q-0-prompt": "ok", "q-0-id": "a"},
        {"name": "x", "count": "1", "op": "up-99999999999999999999"},
        {"name": "x", "count": "1", "op": "\x00"},
    ],
)
def test_malformed_posts_are_form_errors_not_500s(client, members, company, data):
    client.force_login(members[Role.OWNER].user)
    for url in (reverse("questionnaire_new"), reverse("questionnaire_edit", args=[make(company).pk])):
        response = client.post(url, data)
        assert response.status_code in (200, 400), (data, response.status_code)
    with company_context(company):
        assert all(v.number == 1 for v in QuestionnaireVersion.objects.all())


# --- Archiving and choosing -------------------------------------------------------------


def test_archive_hides_from_the_choice_but_keeps_versions(client, members, company):
    questionnaire = make(company)
    with company_context(company):
        q.update_questionnaire(questionnaire, name="Sales roles", description="", questions=[TEXT])
        assert str(questionnaire.pk) in {choice.value for choice in q.choices()}
    client.force_login(members[Role.RECRUITER].user)
    assert client.post(reverse("questionnaire_archive", args=[questionnaire.pk])).status_code == 302
    with company_context(company):
        values = {choice.value for choice in q.choices()}
        assert str(questionnaire.pk) not in values
        assert {f"builtin:{item.key}" for item in q.builtins()} <= values
        assert questionnaire.versions.count() == 2
        with pytest.raises(LookupError):
            q.version_for_request(str(questionnaire.pk))
        assert Entry.objects.filter(action="questionnaire_archived").count() == 1
    listing = client.get(reverse("questionnaires")).content.decode()
    assert 'id="archived-questionnaires"' in listing
    page = client.get(reverse("questionnaire_detail", args=[questionnaire.pk], query={"version": "1"}))
    assert page.status_code == 200
    assert client.post(reverse("questionnaire_restore", args=[questionnaire.pk])).status_code == 302
    with company_context(company):
        assert q.version_for_request(str(questionnaire.pk)).number == 2
        assert Entry.objects.filter(action="questionnaire_restored").count() == 1


def test_a_request_pins_a_stored_snapshot_of_a_built_in(company):
    with company_context(company):
        version = q.version_for_request("builtin:executive")
        assert version.questions == q.builtin("executive").questions
        assert q.version_for_request("builtin:executive").pk == version.pk  # reused, not copied again
        # The snapshot is Vouch's, not a company template: not listed, not editable.
        assert not q.company_templates().exists()
        assert str(version.questionnaire_id) not in {choice.value for choice in q.choices()}
        for bad in ("builtin:nope", "not-a-uuid", str(uuid.uuid4()), ""):
            with pytest.raises(LookupError):
                q.version_for_request(bad)


def test_one_snapshot_per_built_in_and_a_changed_built_in_gets_a_new_version(company, monkeypatch):
    from django.db import IntegrityError, transaction

    from vouch.references.questionnaires import builtin as builtin_questionnaires

    with company_context(company):
        first = q.version_for_request("builtin:graduate")
        with pytest.raises(IntegrityError), transaction.atomic(using=first._state.db):
            Questionnaire.objects.create(name="Second snapshot", builtin_key="graduate")
        # The code's questions change in a later release: requests sent from now on pin
        # version 2; requests already sent keep version 1 as it was.
        changed_library = copy.deepcopy(builtin_questionnaires.BUILTINS)
        changed_library["graduate"]["questions"] = [TEXT]
        monkeypatch.setattr(q, "BUILTINS", changed_library)
        second = q.version_for_request("builtin:graduate")
        assert (second.number, second.questions) == (2, [TEXT])
        assert second.questionnaire_id == first.questionnaire_id
        assert QuestionnaireVersion.objects.get(pk=first.pk).questions == first.questions != [TEXT]


def test_snapshot_of_a_built_in_is_not_reachable_by_url(client, members, company):
    with company_context(company):
        snapshot = q.version_for_request("builtin:graduate").questionnaire
    client.force_login(members[Role.OWNER].user)
    for name in ("questionnaire_detail", "questionnaire_edit"):
        assert client.get(reverse(name, args=[snapshot.pk])).status_code == 404


# --- Roles and companies ------------------------------------------------------------------


def test_viewer_reads_but_cannot_create_edit_copy_or_archive(client, members, company):
    questionnaire = make(company)
    client.force_login(members[Role.VIEWER].user)
    assert client.get(reverse("questionnaires")).status_code == 200
    detail = client.get(reverse("questionnaire_detail", args=[questionnaire.pk]))
    assert detail.status_code == 200
    assert reverse("questionnaire_edit", args=[questionnaire.pk]) not in detail.content.decode()
    assert client.get(reverse("questionnaire_new")).status_code == 403
    assert client.post(reverse("questionnaire_new"), post_of("Mine", GOOD)).status_code == 403
    edit_url = reverse("questionnaire_edit", args=[questionnaire.pk])
    assert client.post(edit_url, post_of("Mine", [TEXT])).status_code == 403
    for name in ("questionnaire_copy", "questionnaire_archive"):
        assert client.post(reverse(name, args=[questionnaire.pk])).status_code == 403
    assert client.post(reverse("questionnaire_copy", args=[q.builtin("executive").id])).status_code == 403
    with company_context(company):
        assert Questionnaire.objects.count() == 1
        assert questionnaire.versions.count() == 1
        assert not Questionnaire.objects.get().is_archived


def test_another_companys_template_is_404(client, members, company):
    other = fast_company("Other Hiring")
    theirs = make(other, name="Their private template")
    client.force_login(members[Role.OWNER].user)
    before = SecurityEvent.objects.filter(action=EventAction.AUTHZ_FAIL).count()
    for name in ("questionnaire_detail", "questionnaire_edit"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    for name in ("questionnaire_copy", "questionnaire_archive", "questionnaire_edit"):
        assert client.post(reverse(name, args=[theirs.pk]), post_of("Hijack", [TEXT])).status_code == 404
    assert SecurityEvent.objects.filter(action=EventAction.AUTHZ_FAIL).count() == before + 5
    assert "Their private template" not in client.get(reverse("questionnaires")).content.decode()
    with company_context(company):
        assert not Questionnaire.objects.exists()
    with company_context(other):
        assert theirs.versions.count() == 1
        assert not Questionnaire.objects.get().is_archived
