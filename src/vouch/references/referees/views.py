"""The referee's pages, under their private link: confirm who they are, answer the
questionnaire (saved as they go), or decline; a thank-you page after.

The link names one Reference; every page loads it with its request, candidate and
questionnaire version in one query. Changes go through ``referees.flows``; once the
reference is submitted, declined or closed, the link shows only a closing page and
every POST is refused with 409, nothing changed. The answers page and its autosave
are on the hot path (benchmarked), so they make no query per question."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.db import router
from django.db.models import QuerySet
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from vouch.core.db import PreparedLookup
from vouch.core.requests import LinkRequest
from vouch.links.decorators import ended_response, link_required, neutral_response
from vouch.links.models import Purpose
from vouch.references import flows
from vouch.references.fraud import checks as fraud
from vouch.references.questionnaires import html as questionnaire_html
from vouch.references.questionnaires.html import filled
from vouch.references.referees import answers as answer_rules
from vouch.references.referees import flows as referee_flows
from vouch.references.referees.forms import DeclineForm, IdentityForm
from vouch.references.request_models import Reference, ReferenceStatus, RequestStatus

AUTOSAVE_HEADER = "HTTP_X_VOUCH_AUTOSAVE"
# Multiple-choice questions on the posted form: all boxes unticked posts nothing, which
# must clear the saved answer rather than leave it as it was.
SHOWN_MULTIPLE = questionnaire_html.SHOWN_MULTIPLE

OPEN, COMPLETED, DECLINED, CLOSED, GONE = "open", "completed", "declined", "closed", "gone"


# The columns the questionnaire page and its saves read: they are the hot path (`make
# bench`), and a query's cost in Django grows with the columns it selects and decrypts.
# A column left out is still loaded by Django when something reads it, in a query of
# its own (tests/references/test_referee_pages.py counts the page's queries).
ANSWERS_PAGE_COLUMNS = (
    "status",
    "confirmed_at",
    "started_at",
    "saved_at",
    "answers",
    "request",
    "request__status",
    "request__role",
    "request__deadline",
    "request__candidate",
    "request__candidate__name",
    "request__questionnaire_version",
    "request__questionnaire_version__questions",
)


def _with_request() -> QuerySet:
    return Reference.objects.select_related("request__candidate", "request__questionnaire_version")


# The answers page's read, compiled once (vouch.core.db).
_answers_page_reference = PreparedLookup(lambda: _with_request().only(*ANSWERS_PAGE_COLUMNS))


def _load(request: LinkRequest) -> Reference | None:
    """The link's reference with everything its pages show, in one query."""
    return _with_request().filter(pk=request.link.subject_id).first()


def _load_for_answers(request: LinkRequest) -> Reference | None:
    """The link's reference with the columns of ``ANSWERS_PAGE_COLUMNS``, in one query."""
    return _answers_page_reference.get(request.link.subject_id, using=router.db_for_read(Reference))


def _state(reference: Reference) -> str:
    if reference.status == ReferenceStatus.COMPLETED:
        return COMPLETED
    if reference.status == ReferenceStatus.DECLINED:
        return DECLINED
    if reference.status == ReferenceStatus.REPLACED:
        return GONE  # its link is revoked when replaced; this is a second lock
    if not reference.is_open or not reference.request.is_open:
        return CLOSED
    return OPEN


@functools.cache
def _suffix(name: str) -> str:
    """Where a referee page sits under the link's own address ("answers/"): the same
    for every token, so worked out once."""
    kwargs = {"token": "t"}
    return reverse(name, kwargs=kwargs)[len(reverse("referee_link", kwargs=kwargs)) :]


def _relative(request: LinkRequest, name: str) -> str:
    """The address of a sibling page relative to this one, so the token itself never
    appears in the page (only in the address bar it came from)."""
    marker = f"/{request.link.token}/"
    at = request.path.find(marker)
    here = request.path[at + len(marker) :] if at >= 0 else ""
    target = _suffix(name)
    if target == here:
        return "./"
    return "../" * here.count("/") + target or "./"


def _context(request: LinkRequest, reference: Reference, **extra) -> dict:
    reference_request = reference.request
    return {
        "company_name": request.link.company.name,
        "candidate_name": reference_request.candidate.name,
        "role": reference_request.role,
        "deadline": reference_request.deadline,
        "home_url": _relative(request, "referee_link"),
        "confirm_url": _relative(request, "referee_confirm"),
        "answers_url": _relative(request, "referee_answers"),
        "decline_url": _relative(request, "referee_decline"),
        **extra,
    }


def _closing_reason(reference: Reference) -> str:
    """Why a closed reference takes no more answers, in the referee's terms."""
    reference_request = reference.request
    if reference_request.status == RequestStatus.COMPLETED:
        return "received all the references it needs, so yours is no longer needed"
    if reference.status == ReferenceStatus.EXPIRED or reference_request.status == RequestStatus.EXPIRED:
        return "closed this request: its deadline has passed"
    return "withdrawn this reference request"


def _closed_page(
    request: LinkRequest, reference: Reference, state: str, *, status: int = 200, message: str = ""
) -> HttpResponse:
    """The only page a finished reference shows: thank you, declined, or closed. With
    409 it answers a change that came too late (nothing was changed)."""
    refusal = message or _refusal_text(state)
    if request.META.get(AUTOSAVE_HEADER) == "1":
        return JsonResponse({"error": refusal}, status=status)
    context = _context(
        request,
        reference,
        state=state,
        refused=status == 409,
        refusal=refusal,
        closing_reason=_closing_reason(reference) if state == CLOSED and not message else "",
    )
    return render(request, "references/referee/closed.html", context, status=status)


def _refusal_text(state: str) -> str:
    if state == COMPLETED:
        return "You have already submitted this reference: the answers can no longer be changed."
    if state == DECLINED:
        return "You have declined to give this reference: nothing can be changed now."
    return "This reference is closed: nothing can be changed now."


def _refused(request: LinkRequest, reference: Reference, message: str = "") -> HttpResponse:
    """The workflow refused a change (the reference closed under this request): 409,
    with the page of the state it is in now."""
    fresh = _load(request) or reference
    state = _state(fresh)
    if state == GONE:
        return ended_response()
    if state == OPEN:  # the workflow's own reason, since the state does not explain it
        return _closed_page(request, fresh, CLOSED, status=409, message=message)
    return _closed_page(request, fresh, state, status=409)


def _open_reference(
    *, load: Callable[[LinkRequest], Reference | None] = _load, closed_shows_page: bool = False
) -> Callable:
    """The guard of every referee page, after the link: the view gets the link's
    reference (read by ``load``) only while it is open, as ``view(request, reference)``.
    A reference that is gone gets the neutral page, a replaced one the ended page. A
    finished or closed one gets its closing page when ``closed_shows_page``; otherwise
    a POST is refused with that page and 409 (nothing changed), and any other method is
    sent back to the link's first page."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: LinkRequest, *args, **kwargs) -> HttpResponse:
            reference = load(request)
            if reference is None:
                return neutral_response()
            state = _state(reference)
            if state == GONE:
                return ended_response()
            if state != OPEN:
                if closed_shows_page:
                    return _closed_page(request, reference, state)
                if request.method == "POST":
                    return _closed_page(request, reference, state, status=409)
                return redirect("referee_link", token=request.link.token)
            return view(request, reference, *args, **kwargs)

        return wrapper

    return decorator


def _record(request: LinkRequest, reference: Reference, action: str) -> None:
    fraud.record(request, reference.request, actor="referee", action=action, reference=reference)


# --- step 1: who is asking, and who you are -----------------------------------------


def _identity_initial(reference: Reference) -> dict:
    return dict(reference.identity or {})


def _home(request: LinkRequest, reference: Reference, form: IdentityForm, *, status: int = 200) -> HttpResponse:
    questions = reference.request.questionnaire_version.questions
    return render(
        request,
        "references/referee/home.html",
        _context(
            request,
            reference,
            form=form,
            confirmed=reference.confirmed_at is not None,
            total=len(questions),
            answered=_answered(questions, reference.answers or {}),
        ),
        status=status,
    )


@link_required(Purpose.REFEREE)
@require_http_methods(["GET", "HEAD"])
@_open_reference(closed_shows_page=True)
def referee_home(request: LinkRequest, reference: Reference) -> HttpResponse:
    """Who is asking and why, then step 1; or the closing page of a finished reference."""
    referee_flows.referee_opened(reference)
    _record(request, reference, "opened")  # runs the fraud checks when the touch is new
    candidate_name = reference.request.candidate.name
    form = IdentityForm(initial=_identity_initial(reference), candidate_name=candidate_name)
    return _home(request, reference, form)


@link_required(Purpose.REFEREE)
@require_http_methods(["GET", "POST"])
def referee_confirm(request: LinkRequest) -> HttpResponse:
    """Step 1 sent: keep who the referee is, then on to the questions."""
    if request.method != "POST":
        return redirect("referee_link", token=request.link.token)
    return _confirm(request)


@_open_reference()
def _confirm(request: LinkRequest, reference: Reference) -> HttpResponse:
    form = IdentityForm(request.POST, candidate_name=reference.request.candidate.name)
    if not form.is_valid():
        return _home(request, reference, form, status=400)
    try:
        referee_flows.confirm_referee(reference, **form.cleaned_data)
    except flows.WorkflowError as error:
        return _refused(request, reference, str(error))
    _record(request, reference, "confirmed")
    return redirect("referee_answers", token=request.link.token)


# --- step 2: the questionnaire -------------------------------------------------------


def _answered(questions: list[dict], values: dict) -> int:
    return sum(1 for question in questions if filled(values.get(question["id"])))


def _answers_page(
    request: LinkRequest, reference: Reference, values: dict, errors: dict, *, status: int = 200
) -> HttpResponse:
    questions = reference.request.questionnaire_version.questions
    required_left = sum(
        1 for question in questions if question.get("required") and not filled(values.get(question["id"]))
    )
    context = _context(
        request,
        reference,
        questions_html=questionnaire_html.questions_html(questions, values, errors),
        total=str(len(questions)),
        answered=str(_answered(questions, values)),
        required_left=str(required_left),
        required_done=required_left == 0,
        errors=errors,
        general_error=errors.get("__all__", ""),
        saved=request.GET.get("saved") == "1" and not errors,
    )
    return render(request, "references/referee/answers.html", context, status=status)


def _submitted(questions: list[dict], post) -> dict:
    """The answers in the posted form; a multiple-choice question shown on the form with
    every box unticked is sent as cleared."""
    submitted = answer_rules.from_post(questions, post)
    shown = set(post.getlist(SHOWN_MULTIPLE))
    for question in questions:
        if question["type"] == "multiple" and question["id"] in shown and question["id"] not in submitted:
            submitted[question["id"]] = []
    return submitted


def _record_saved(request: LinkRequest, reference: Reference) -> None:
    """Record "saved" at most once per clock minute per reference: autosave fires often,
    and the fraud checks need where the answers came from, not every keystroke.
    ``saved_at`` (as loaded, before this save) says whether this minute has one."""
    previous, now = reference.saved_at, timezone.now()
    if previous is None or previous.replace(second=0, microsecond=0) != now.replace(second=0, microsecond=0):
        _record(request, reference, "saved")


@link_required(Purpose.REFEREE)
@require_http_methods(["GET", "HEAD", "POST"])
@_open_reference(load=_load_for_answers)
def referee_answers(request: LinkRequest, reference: Reference) -> HttpResponse:
    """The questionnaire, prefilled from saved progress. POST saves (button "save", or
    the autosave's fetch: a 204) or submits (button "submit": then the thank-you page)."""
    autosave = request.META.get(AUTOSAVE_HEADER) == "1"
    if reference.confirmed_at is None:
        if autosave:
            return JsonResponse({"error": "Confirm your details first."}, status=409)
        return redirect("referee_link", token=request.link.token)
    if request.method != "POST":
        return _answers_page(request, reference, reference.answers or {}, {})

    questions = reference.request.questionnaire_version.questions
    submitted = _submitted(questions, request.POST)
    if request.POST.get("action") == "submit" and not autosave:
        return _submit(request, reference, submitted)
    try:
        errors = referee_flows.save_answers(reference, submitted)
    except flows.WorkflowError as error:
        return _refused(request, reference, str(error))
    _record_saved(request, reference)
    if autosave:
        if errors:
            return JsonResponse({"errors": errors}, status=400)
        return HttpResponse(status=204)
    if errors:
        values = {**(reference.answers or {}), **submitted}
        return _answers_page(request, reference, values, errors, status=400)
    return redirect(reverse("referee_answers", kwargs={"token": request.link.token}) + "?saved=1")


def _submit(request: LinkRequest, reference: Reference, submitted: dict) -> HttpResponse:
    try:
        errors = referee_flows.submit_answers(reference, submitted)
        if errors:
            # Not final yet, but what is valid is kept, as a save would.
            referee_flows.save_answers(reference, submitted)
    except flows.WorkflowError as error:
        return _refused(request, reference, str(error))
    if errors:
        values = {**(reference.answers or {}), **submitted}
        return _answers_page(request, reference, values, errors, status=400)
    _record(request, reference, "submitted")  # runs the fraud checks (a new touch)
    return redirect("referee_link", token=request.link.token)


# --- declining -----------------------------------------------------------------------


@link_required(Purpose.REFEREE)
@require_http_methods(["GET", "HEAD", "POST"])
@_open_reference()
def referee_decline(request: LinkRequest, reference: Reference) -> HttpResponse:
    """Decline with a reason; the candidate is told so they can nominate someone else."""
    form = DeclineForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            referee_flows.decline(reference, form.cleaned_data["reason"])
        except flows.WorkflowError as error:
            return _refused(request, reference, str(error))
        _record(request, reference, "declined")
        return redirect("referee_link", token=request.link.token)
    status = 400 if request.method == "POST" else 200
    return render(request, "references/referee/decline.html", _context(request, reference, form=form), status=status)
