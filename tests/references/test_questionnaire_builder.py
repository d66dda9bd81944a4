"""The questionnaire builder with htmx: each post (add, move, remove, order, retype,
check, save) answers with the part of the page it changed, errors as 422 with their
messages by the field, and the same posts without JavaScript answer with the whole page.
Attacked with forged types, orders and indexes, huge text, other companies' ids,
missing CSRF tokens and roles that may not edit."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.accounts.helpers import fast_company
from tests.references.test_questionnaires import GOOD, RATING, SINGLE, TEXT, YES_NO, changed, make, post_of
from tests.references.workflow import make_request
from tests.security.test_csrf import token_from
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.models import Questionnaire
from vouch.references.questionnaires import services as q

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
NEW = "/questionnaires/new/"


@pytest.fixture
def recruiter(client, members):
    client.force_login(members[Role.RECRUITER].user)
    return client


def htmx(client, url: str, data: dict):
    return client.post(url, data, **HTMX)


def prompts(page: str) -> list[str]:
    return re.findall(r'name="q-\d+-prompt" id="q-\d+-prompt" value="([^"]*)"', page)


def autofocused(page: str) -> list[str]:
    return re.findall(r'id="([^"]+)"[^>]*\sautofocus[\s>]', page)


def slot(page: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="{re.escape(name)}"[^>]*>([^<]*)</p>', page)
    assert match, f"no slot {name}"
    return match.group(1)


# --- Operations in place --------------------------------------------------------------


def test_add_answers_with_the_form_alone_and_focuses_the_new_question(recruiter):
    response = htmx(recruiter, NEW, post_of("Draft", [TEXT], op="add"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#builder", "outerHTML")
    assert '<form method="post" action="/questionnaires/new/" id="builder"' in page
    assert 'name="q-1-type"' in page and 'name="count" value="2"' in page
    assert autofocused(page) == ["q-1-type"]
    assert '<p id="builder-status" hx-swap-oob="innerHTML">Question 2 added.</p>' in page


def test_move_keeps_focus_on_the_moved_question_and_the_end_button_stays(recruiter):
    page = htmx(recruiter, NEW, post_of("Draft", [TEXT, YES_NO, SINGLE], op="up-1")).content.decode()
    assert prompts(page) == [YES_NO["prompt"], TEXT["prompt"], SINGLE["prompt"]]
    assert autofocused(page) == ["q-0-up"]
    # Now first: its Move up button is still there, marked unavailable, and keeps the focus.
    assert re.search(r'id="q-0-up" class="small secondary" aria-disabled="true" autofocus', page)
    again = htmx(recruiter, NEW, post_of("Draft", [YES_NO, TEXT, SINGLE], op="up-0")).content.decode()
    assert prompts(again) == [YES_NO["prompt"], TEXT["prompt"], SINGLE["prompt"]]
    assert "Question 1 is already first." in again
    down = htmx(recruiter, NEW, post_of("Draft", [TEXT, YES_NO, SINGLE], op="down-0")).content.decode()
    assert prompts(down) == [YES_NO["prompt"], TEXT["prompt"], SINGLE["prompt"]]
    assert autofocused(down) == ["q-1-down"]
    assert "Question 1 moved down to position 2." in down


def test_remove_focuses_the_question_that_took_its_place(recruiter):
    page = htmx(recruiter, NEW, post_of("Draft", [TEXT, YES_NO], op="remove-0")).content.decode()
    assert prompts(page) == [YES_NO["prompt"]]
    assert autofocused(page) == ["q-0-heading"]
    last = htmx(recruiter, NEW, post_of("Draft", [TEXT], op="remove-0")).content.decode()
    assert prompts(last) == [] and autofocused(last) == ["add-question"]


def test_dragged_order_is_applied_on_the_server(recruiter):
    page = htmx(recruiter, NEW, post_of("Draft", [TEXT, YES_NO, SINGLE], op="order") | {"order": "2,0,1"})
    body = page.content.decode()
    assert prompts(body) == [SINGLE["prompt"], TEXT["prompt"], YES_NO["prompt"]]
    assert autofocused(body) == ["q-0-heading"]
    assert "Question 3 moved to position 1." in body
    assert body.index('value="context"') < body.index('value="strengths"')  # each id goes with its question
    # An adjacent swap: the question builder.js says was dragged keeps the keyboard.
    swap = post_of("Draft", [TEXT, YES_NO, SINGLE], op="order") | {"order": "1,0,2", "dragged": "0"}
    assert autofocused(htmx(recruiter, NEW, swap).content.decode()) == ["q-1-heading"]
    for forged in ("7", "-1", "x" * 5000, ""):
        page = htmx(recruiter, NEW, swap | {"dragged": forged})
        assert page.status_code == 200 and autofocused(page.content.decode()) in (["q-0-heading"], ["q-1-heading"])


@pytest.mark.parametrize("order", ["", "0,0,1", "2,1", "0,1,2,3", "3,1,0", "x,y,z", "-1,0,1", "1," * 5000, "0,1,2\x00"])
def test_a_forged_order_changes_nothing(recruiter, order):
    response = htmx(recruiter, NEW, post_of("Draft", [TEXT, YES_NO, SINGLE], op="order") | {"order": order})
    assert response.status_code == 200
    assert prompts(response.content.decode()) == [TEXT["prompt"], YES_NO["prompt"], SINGLE["prompt"]]


@pytest.mark.parametrize(
    ("kind", "shown", "hidden"),
    [
        ("text", [], ["choices", "scale_max", "low_label", "high_label"]),
        ("yes_no", [], ["choices", "scale_max", "low_label", "high_label"]),
        ("single", ["choices"], ["scale_max", "low_label", "high_label"]),
        ("multiple", ["choices"], ["scale_max", "low_label", "high_label"]),
        ("rating", ["scale_max", "low_label", "high_label"], ["choices"]),
    ],
)
def test_the_type_select_brings_back_the_fields_of_that_type(recruiter, kind, shown, hidden):
    data = post_of("Draft", [TEXT, SINGLE], op="retype-1") | {"q-1-type": kind, "q-1-low_label": "Poor"}
    response = htmx(recruiter, NEW, data)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith("<section") and page.count("<section") == 1  # that question alone
    assert 'id="question-1"' in page and "HX-Retarget" not in response
    for part in shown:
        assert f'<label for="q-1-{part}">' in page and f'id="q-1-{part}-error"' in page
    for part in hidden:
        # Kept, not shown: switching back brings the text typed there back.
        assert f'<input type="hidden" name="q-1-{part}"' in page and f'<label for="q-1-{part}">' not in page
    if kind == "rating":
        assert '<label for="q-1-scale_max">Highest rating</label>' in page
        assert '<label for="q-1-high_label">Label for the highest rating</label>' in page
        assert 'value="Poor"' in page
    if kind not in ("single", "multiple"):
        assert 'name="q-1-choices" value="Manager\nPeer"' in page
    # No message appears on fields that have only just been shown.
    assert 'class="field-error" id="q-1-low_label-error"></p>' in page or kind != "rating"


def test_without_javascript_the_same_buttons_post_the_whole_page(recruiter):
    added = recruiter.post(NEW, post_of("Draft", [TEXT], op="add"))
    assert added.status_code == 200 and "<html" in added.content.decode()
    assert "HX-Retarget" not in added
    retyped = recruiter.post(NEW, post_of("Draft", [TEXT], op="retype-0") | {"q-0-type": "rating"}).content.decode()
    assert "<html" in retyped and '<label for="q-0-low_label">' in retyped
    assert autofocused(retyped) == ["q-0-type"]
    assert "data-no-js>Show the fields for this type" in retyped
    moved = recruiter.post(NEW, post_of("Draft", [TEXT, YES_NO], op="down-0")).content.decode()
    assert prompts(moved) == [YES_NO["prompt"], TEXT["prompt"]] and autofocused(moved) == ["q-1-down"]
    # A check is only asked by htmx; posted by hand it is the page again.
    checked = recruiter.post(NEW, post_of("Draft", [changed(TEXT, prompt="")], op="check-0"))
    assert checked.status_code == 200 and "<html" in checked.content.decode()
    saved = recruiter.post(NEW, post_of("Draft", [YES_NO, TEXT, RATING]))
    assert saved.status_code == 302 and "HX-Redirect" not in saved


# --- Checks as you type -------------------------------------------------------------------


def test_a_check_answers_422_with_the_message_in_its_fields_slot(recruiter):
    data = post_of("Draft", [TEXT, changed(RATING, scale=RATING["scale"] | {"high_label": ""})], op="check-1")
    response = htmx(recruiter, NEW, data)
    page = response.content.decode()
    assert response.status_code == 422
    assert slot(page, "q-1-high_label-error") == "Label the highest rating (at most 50 characters)."
    assert slot(page, "q-1-low_label-error") == "" and slot(page, "q-1-prompt-error") == ""
    assert page.count('hx-swap-oob="true"') == page.count("<p ") + 1  # every slot, and the question's list
    assert "q-0-" not in page  # only the question typed in
    fine = htmx(recruiter, NEW, post_of("Draft", [TEXT, RATING], op="check-1"))
    assert fine.status_code == 200 and slot(fine.content.decode(), "q-1-high_label-error") == ""
    # An id another question has is the whole list's concern, shown on this question.
    dup = htmx(recruiter, NEW, post_of("Draft", [TEXT, changed(YES_NO, id=TEXT["id"])], op="check-1"))
    assert dup.status_code == 422 and "is used by another question" in dup.content.decode()


def test_the_name_is_checked_as_it_is_typed(recruiter):
    response = htmx(recruiter, NEW, post_of("", [TEXT], op="check-details"))
    assert response.status_code == 422
    assert slot(response.content.decode(), "id_name_error") == "This field is required."
    assert htmx(recruiter, NEW, post_of("Fine", [TEXT], op="check-details")).status_code == 200
    long = htmx(recruiter, NEW, post_of("x" * 201, [TEXT], op="check-details"))
    assert long.status_code == 422 and "at most 200 characters" in long.content.decode()


@pytest.mark.parametrize(
    "edit",
    [
        {"q-0-type": "essay"},
        {"q-0-type": "<script>alert(1)</script>"},
        {"q-0-type": "\x00"},
        {"q-0-prompt": "x" * 1_000_000},
        {"q-0-type": "single", "q-0-choices": "c\n" * 200_000},
        {"q-0-type": "rating", "q-0-scale_max": "9" * 100_000, "q-0-low_label": "a", "q-0-high_label": "b"},
        {"q-0-id": "../../etc"},
        {"count": "99999"},
    ],
)
@pytest.mark.parametrize("op", ["check-0", "retype-0", "add", "up-0", "save"])
def test_tampered_posts_are_4xx_or_shown_never_500(recruiter, company, edit, op):
    response = htmx(recruiter, NEW, post_of("Draft", [TEXT], op=op) | edit)
    assert response.status_code in (200, 422), response.status_code
    page = response.content.decode()
    assert "<script>alert" not in page
    assert len(page) < 100_000  # nothing huge is echoed back
    with company_context(company):
        assert not Questionnaire.objects.exists()


def test_a_stale_index_shows_the_form_again(recruiter):
    for op in ("check-7", "retype-7", "remove-7", "up-99999999999999"):
        response = htmx(recruiter, NEW, post_of("Draft", [TEXT], op=op))
        assert response.status_code == 200
        assert response["HX-Retarget"] == "#builder"
        assert prompts(response.content.decode()) == [TEXT["prompt"]]


# --- Saving ---------------------------------------------------------------------------------


def test_saving_with_htmx_redirects_and_keeps_the_order_and_types(recruiter, company):
    response = htmx(recruiter, NEW, post_of("Engineers", [RATING, TEXT, SINGLE]))
    assert response.status_code == 200
    with company_context(company):
        questionnaire = Questionnaire.objects.get()
        assert q.current_version(questionnaire).questions == [RATING, TEXT, SINGLE]
    assert response["HX-Redirect"] == reverse("questionnaire_detail", args=[questionnaire.pk])
    assert "Engineers created." in recruiter.get(response["HX-Redirect"]).content.decode()


def test_a_refused_save_is_422_with_the_form_and_its_summary(recruiter, company):
    response = htmx(recruiter, NEW, post_of("Engineers", [TEXT, changed(SINGLE, choices=["one"])]))
    page = response.content.decode()
    assert response.status_code == 422 and "<html" not in page
    assert autofocused(page) == []  # the summary is the one autofocus (a <p>, matched below)
    assert 'class="message error error-summary" role="alert" tabindex="-1" autofocus' in page
    assert slot(page, "q-1-choices-error") == "Give between 2 and 10 choices."
    with company_context(company):
        assert not Questionnaire.objects.exists()


def test_editing_a_questionnaire_in_use_adds_a_version_the_request_does_not_see(client, members, company):
    questionnaire = make(company, questions=[TEXT, SINGLE])
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, questionnaire=str(questionnaire.pk))
    with company_context(company):
        pinned = reference_request.questionnaire_version
        assert pinned.number == 1
    client.force_login(members[Role.ADMIN].user)
    url = reverse("questionnaire_edit", args=[questionnaire.pk])
    moved = htmx(client, url, post_of("Sales roles", [TEXT, SINGLE], op="down-0")).content.decode()
    assert prompts(moved) == [SINGLE["prompt"], TEXT["prompt"]]
    with company_context(company):
        assert questionnaire.versions.count() == 1  # nothing is kept before Save
    saved = htmx(client, url, post_of("Sales roles", [SINGLE, TEXT]))
    assert saved["HX-Redirect"] == reverse("questionnaire_detail", args=[questionnaire.pk])
    with company_context(company):
        assert [v.number for v in questionnaire.versions.order_by("number")] == [1, 2]
        reference_request.refresh_from_db()
        assert reference_request.questionnaire_version.pk == pinned.pk
        assert reference_request.questionnaire_version.questions == [TEXT, SINGLE]
        assert q.current_version(questionnaire).questions == [SINGLE, TEXT]


# --- Who may, from where --------------------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "check-0", "retype-0", "order", "save"])
def test_another_companys_questionnaire_is_404_for_every_operation(recruiter, company, op):
    other = fast_company("Other Hiring")
    theirs = make(other, name="Their private template", questions=[TEXT])
    url = reverse("questionnaire_edit", args=[theirs.pk])
    response = htmx(recruiter, url, post_of("Hijack", [TEXT], op=op) | {"order": "0"})
    assert response.status_code == 404
    assert "Their private template" not in response.content.decode()
    assert "What are their strengths?" not in response.content.decode()
    with company_context(other):
        assert theirs.versions.count() == 1 and Questionnaire.objects.get().name == "Their private template"


def test_question_ids_from_another_questionnaire_or_company_are_only_labels(recruiter, company):
    """The builder never looks a question up: an id copied from elsewhere is a label, checked
    like any other, and nothing of the questionnaire it came from is read or changed."""
    other = fast_company("Other Hiring")
    theirs = make(other, questions=[changed(TEXT, id="secret-q", prompt="Their secret prompt")])
    mine = make(company, name="Mine", questions=[changed(TEXT, id="mine-q")])
    url = reverse("questionnaire_edit", args=[mine.pk])
    for op in ("check-0", "retype-0", "save"):
        response = htmx(recruiter, url, post_of("Mine", [changed(TEXT, id="secret-q")], op=op))
        assert response.status_code == 200
        assert "Their secret prompt" not in response.content.decode()
    with company_context(company):
        assert q.current_version(mine).questions == [changed(TEXT, id="secret-q")]
    with company_context(other):
        assert q.current_version(theirs).questions[0]["prompt"] == "Their secret prompt"


@pytest.mark.parametrize("op", ["add", "check-0", "retype-0", "save"])
def test_a_viewer_may_not_use_the_builder(client, members, company, op):
    client.force_login(members[Role.VIEWER].user)
    assert htmx(client, NEW, post_of("Mine", GOOD, op=op)).status_code == 403
    with company_context(company):
        assert not Questionnaire.objects.exists()


@pytest.mark.parametrize("op", ["add", "check-0", "retype-0", "save"])
def test_htmx_posts_need_the_csrf_token_in_their_header(csrf_client, members, company, op):
    csrf_client.force_login(members[Role.RECRUITER].user)
    page = csrf_client.get(NEW)
    # The page hands htmx the token for its X-CSRFToken header (web/base.html).
    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'", page.content.decode())
    token = token_from(page)
    data = post_of("Mine", [TEXT], op=op)
    forged = csrf_client.post(NEW, data, HTTP_ORIGIN="https://testserver", **HTMX)
    assert forged.status_code == 403
    with company_context(company):
        assert not Questionnaire.objects.exists()
    allowed = csrf_client.post(NEW, data, HTTP_ORIGIN="https://testserver", HTTP_X_CSRFTOKEN=token, **HTMX)
    assert allowed.status_code == 200


def test_a_check_changes_only_the_message_of_the_field_typed_in(recruiter):
    """Typing the question does not mark the scale labels not reached yet."""
    data = post_of("Draft", [changed(RATING, prompt="", scale=RATING["scale"] | {"high_label": ""})], op="check-0")
    typing = recruiter.post(NEW, data, HTTP_HX_TRIGGER_NAME="q-0-prompt", **HTMX)
    page = typing.content.decode()
    assert typing.status_code == 422
    assert slot(page, "q-0-prompt-error").startswith("Write the question")
    assert "q-0-high_label-error" not in page
    fine = recruiter.post(NEW, data | {"q-0-prompt": "Fine"}, HTTP_HX_TRIGGER_NAME="q-0-prompt", **HTMX)
    assert fine.status_code == 200 and slot(fine.content.decode(), "q-0-prompt-error") == ""
    label = recruiter.post(NEW, data, HTTP_HX_TRIGGER_NAME="q-0-high_label", **HTMX)
    assert label.status_code == 422 and "q-0-prompt-error" not in label.content.decode()
    name = recruiter.post(NEW, post_of("", [TEXT], op="check-details"), HTTP_HX_TRIGGER_NAME="name", **HTMX)
    assert name.status_code == 422 and "id_description_error" not in name.content.decode()
    # A field of another question, or a name made up, shows nothing.
    other = recruiter.post(NEW, data, HTTP_HX_TRIGGER_NAME="q-7-prompt" + "x" * 10_000, **HTMX)
    assert other.status_code == 200 and "field-error" not in other.content.decode()


def test_checks_as_you_type_never_count_as_an_attack(recruiter):
    """A check as you type answers 422, a save with a mistake 400; neither is an intrusion
    point for a signed-in member (vouch.shield: twenty points in a few minutes block an
    account), so typing a long question with a mistake in it blocks nobody."""
    away = {"REMOTE_ADDR": "203.0.113.40"}  # loopback is never scored
    data = post_of("Draft", [changed(TEXT, prompt="")], op="check-0")
    statuses = [recruiter.post(NEW, data, **HTMX, **away).status_code for _ in range(25)]
    assert statuses == [422] * 25
    assert recruiter.get(NEW, **away).status_code == 200
    # Nor the same refusal as a 400 (a save without JavaScript): a form's errors.
    save = post_of("Draft", [changed(TEXT, prompt="")])
    refused = [recruiter.post(NEW, save, **away).status_code for _ in range(25)]
    assert refused == [400] * 25
    assert recruiter.get(NEW, **away).status_code == 200
