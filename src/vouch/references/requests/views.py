"""Reference request pages: the dashboard list, new requests (one, or many from a paste or
CSV), a request's page with its timeline, and its changes (cancel, delete, resend,
deadline). Thin: parse, ask the policy, call the workflow, render.

Requests are only ever fetched through ``requests.access`` (a recruiter may be limited
to their own). Every change is a POST answered with a redirect; a move the workflow
refuses is a 400 carrying its message."""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import dateformat
from django.views.decorators.http import require_POST, require_safe

from vouch.accounts import policy, user_service
from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.activity import services as activity
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core import htmx
from vouch.core.context import company_context
from vouch.core.requests import CompanyRequest
from vouch.references import bulk
from vouch.references.desk import export, figures
from vouch.references.desk.status import status_line
from vouch.references.flows import WorkflowError
from vouch.references.fraud import checks as fraud
from vouch.references.fraud import triage
from vouch.references.reports import data as report_data
from vouch.references.request_models import BulkImport, ReferenceRequest, RequestStatus, WorkflowSettings
from vouch.references.requests import flows as request_flows
from vouch.references.requests import listing, listing_html
from vouch.references.requests.access import request_or_404, visibility
from vouch.references.requests.forms import (
    CSV_COLUMNS,
    CSV_EXAMPLE,
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    BatchRefused,
    BulkForm,
    CancelForm,
    ConfirmBulkForm,
    DeadlineForm,
    DeleteForm,
    FilterForm,
    RequestForm,
    claim_batch,
    open_batch,
    sign_batch,
)
from vouch.shield import admission
from vouch.tenancy import company_db
from vouch.tenancy.lookups import company_object_or_404

# The id of the element the list's filters replace as the recruiter types.
RESULTS = "request-results"
SHARED = ("questionnaire", "referees_required", "guidance", "deadline", "work_email_required")


# --- the dashboard ---------------------------------------------------------------------


def _filter_options(raw: QueryDict, members: dict[int, str]) -> dict:
    """The filter controls' options and current values, as plain strings: the form is
    drawn by hand in the template (a widget template per option would cost more than
    the rows themselves on a company with many members)."""
    return {
        "q": raw.get("q", ""),
        "statuses": listing_html.options_html(RequestStatus.choices, raw.get("status", "")),
        "recruiters": listing_html.options_html(members.items(), raw.get("recruiter", "")),
        "flagged": bool(raw.get("flagged")),
        "created_from": raw.get("created_from", ""),
        "created_to": raw.get("created_to", ""),
    }


@company_action(Action.VIEW_REQUESTS)
@admission.admit("search", when=admission.searching)  # a few searches at once per company (P3)
def request_list(request: CompanyRequest) -> HttpResponse:
    """The list with its filters; as the recruiter types or changes a filter, htmx asks
    for the results alone (``RESULTS``), and without JavaScript the form asks for the
    whole page."""
    partial = htmx.swaps(request, RESULTS)
    template = "references/requests/_results.html" if partial else "references/requests/list.html"
    membership = request.membership
    # Read once: who sees what, and when a referee is late (the action marker).
    workflow = WorkflowSettings.current()
    seen = visibility(request, workflow)
    members = user_service.company_members(request.company)
    context = {
        "options": _filter_options(request.GET, members),
        "can_create": policy.can(membership, Action.CREATE_REQUEST),
        "sees_all": seen.everything,
        "partial": partial,
    }
    form, filters, kept = _filters(request, members, seen)
    if filters is None:
        context = {**context, "form": form, "result": None}
        return htmx.varies(render(request, template, context, status=400))
    result = listing.dashboard_page(seen, filters, request.GET.get("page", "1"), members)
    # With nothing to show and no filter, say whether there is anything at all.
    has_any = result.page.paginator.count > 0 or (filters.active and seen.of(ReferenceRequest.objects.all()).exists())
    querystring = urlencode(kept)
    context |= {"form": form, "result": result, "has_any": has_any, "querystring": querystring}
    if result.page.object_list:
        # The "action needed" marker: one query for the page's rows.
        marked = figures.action_ids(
            seen.of(ReferenceRequest.objects.all()),
            membership.user_id,
            [row[0] for row in result.page.object_list],
            workflow,
        )
        context["rows"] = listing_html.rows_html(result.page.object_list, result.names, marked)
        context["pagination"] = listing_html.pagination_html(result.page, querystring, result.summary)
    return htmx.varies(render(request, template, context))


def _filters(
    request: CompanyRequest, members: dict[int, str], seen
) -> tuple[FilterForm | None, listing.Filters | None, dict[str, str]]:
    """The list's filters from the query string: (form, filters, the values to keep in
    links); filters None when the form is invalid (the caller answers 400)."""
    if request.GET.keys().isdisjoint(FilterForm.base_fields):
        # No filter asked for (the page as first opened, or another page of it): nothing
        # to validate, and building the form's fields was about 3% of the page's work.
        return None, listing.Filters(), {}
    form = FilterForm(request.GET, members=members, show_recruiter=seen.everything)
    if not form.is_valid():
        return form, None, {}
    data = form.cleaned_data
    filters = listing.Filters(
        status=data["status"],
        recruiter=data.get("recruiter"),
        flagged=data["flagged"],
        created_from=data["created_from"],
        created_to=data["created_to"],
        query=data["q"].strip(),
    )
    kept = {key: str(value) for key, value in request.GET.items() if key != "page" and value and key in form.fields}
    return form, filters, kept


@require_safe
@company_action(Action.VIEW_REQUESTS)
@admission.admit("search", when=admission.searching)
def request_export(request: CompanyRequest) -> HttpResponse | StreamingHttpResponse:
    """The list's rows as CSV, with the same filters (and the same "only their own"
    limit): every matching row, not one page, streamed as it is read."""
    seen = visibility(request)
    members = user_service.company_members(request.company)
    form, filters, _ = _filters(request, members, seen)
    if filters is None:
        errors = (
            "; ".join(f"{name}: {' '.join(str(m) for m in problems)}" for name, problems in form.errors.items())
            if form
            else ""
        )
        return HttpResponseBadRequest(f"Invalid filters. {errors}", content_type="text/plain; charset=utf-8")
    matching = listing.filtered(seen.of(ReferenceRequest.objects.all()), filters)
    company = request.company
    activity.log(
        activity.Kind.REQUESTS_EXPORTED,
        "The request list was exported as CSV.",
        actor=request.user,
        details={"filtered": filters.active},
    )
    # A download of personal data, counted by the abuse rules against the company's normal (P18).
    record(EventAction.DATA_EXPORT, request=request, target="requests", details={"kind": "request_list_csv"})

    def stream():
        # Read after the view has returned: the rows are read in the company's context.
        with company_context(company):
            yield from export.lines(matching, dict(members))

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="reference-requests.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- new requests ----------------------------------------------------------------------


@company_action(Action.CREATE_REQUEST)
def request_new(request: CompanyRequest) -> HttpResponse:
    form = RequestForm(request.POST or None, settings=WorkflowSettings.current())
    if request.method == "POST" and form.is_valid():
        try:
            created = request_flows.create_request(actor=request.user, **form.cleaned_data)
        except WorkflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Request sent: {created.candidate.name} has been emailed their link.")
            return redirect("request_detail", request_id=created.pk)
    status = 400 if form.is_bound else 200
    return render(request, "references/requests/new.html", {"form": form}, status=status)


def _bulk_page(request: CompanyRequest, form: BulkForm, status: int = 200, **extra) -> HttpResponse:
    context = {
        "form": form,
        "example": CSV_EXAMPLE,
        "columns": ",".join(CSV_COLUMNS),
        "max_rows": CSV_MAX_ROWS,
        "max_mb": CSV_MAX_BYTES // 1_000_000,
        **extra,
    }
    return render(request, "references/requests/bulk.html", context, status=status)


@company_action(Action.CREATE_REQUEST)
@admission.admit("import", when=lambda request: request.method == "POST")  # P3: a few at once per company
def request_bulk(request: CompanyRequest) -> HttpResponse:
    if request.method == "GET" and request.GET.get("example") == "1":
        response = HttpResponse(CSV_EXAMPLE, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="vouch-requests-example.csv"'
        return response
    if request.method == "POST" and request.POST.get("step") == "confirm":
        return _bulk_confirm(request)
    form = BulkForm(request.POST or None, request.FILES or None, settings=WorkflowSettings.current())
    if request.method != "POST":
        return _bulk_page(request, form)
    if not form.is_valid():
        return _bulk_page(request, form, status=400)
    batch = form.cleaned_data["batch"]
    shared = {name: form.cleaned_data[name] for name in SHARED}
    confirm = ConfirmBulkForm(
        initial={
            "payload": sign_batch(batch, shared, user_id=request.user.pk, company_id=request.company.pk),  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        }
    )
    return _bulk_page(request, form, batch=batch, confirm=confirm, shared=shared)


def _bulk_confirm(request: CompanyRequest) -> HttpResponse:
    confirm = ConfirmBulkForm(request.POST)
    form = BulkForm(settings=WorkflowSettings.current())
    if not confirm.is_valid():
        return _bulk_page(request, form, status=400, refused="This confirmation is not valid: check the CSV again.")
    try:
        batch = open_batch(confirm.cleaned_data["payload"], user_id=request.user.pk, company_id=request.company.pk)  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        claim_batch(batch)
    except BatchRefused as exc:
        return _bulk_page(request, form, status=400, refused=str(exc))
    if len(batch.rows) > bulk.SYNC_LIMIT:
        job = bulk.start(
            company_id=request.company.pk,
            actor=request.user,
            rows=[[row.line, *row.values().values()] for row in batch.rows],
            shared=batch.shared,
            skipped=batch.skipped,
        )
        return redirect("request_bulk_progress", import_id=job.pk)
    created, failures = 0, []
    for row in batch.rows:
        try:
            request_flows.create_request(actor=request.user, **row.values(), **batch.shared)  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
        except WorkflowError as exc:
            failures.append(f"Row {row.line}: {exc}")
        else:
            created += 1
    skipped = batch.skipped + len(failures)
    summary = f"Created {created} request{'s' if created != 1 else ''}"
    if skipped:
        summary += f"; {skipped} row{'s' if skipped != 1 else ''} skipped"
    if created:
        messages.success(request, summary + ".")
    else:
        messages.error(request, summary + ".")
    for failure in failures[:20]:
        messages.warning(request, failure)
    return redirect("requests")


@company_action(Action.CREATE_REQUEST)
def request_bulk_progress(request: CompanyRequest, import_id: UUID) -> HttpResponse:
    """How far a background import has got; htmx asks again every second until done.
    Only the member who started it sees it (others get the same 404 as a wrong id)."""
    job = company_object_or_404(request, BulkImport, pk=import_id, created_by_id=request.user.pk)
    context = {"job": job, "skipped": job.skipped_at_preview + (job.done - job.created)}
    if request.headers.get("HX-Request") == "true":
        return render(request, "references/requests/_bulk_progress.html", context)
    return render(request, "references/requests/bulk_progress.html", context)


# --- one request -----------------------------------------------------------------------


def _detail(
    request: CompanyRequest,
    reference_request: ReferenceRequest,
    *,
    status: int = 200,
    error: str = "",
    deadline_form: DeadlineForm | None = None,
) -> HttpResponse:
    membership = request.membership
    references = list(
        reference_request.references.only(
            "id",
            "request_id",
            "status",
            "name",
            "relationship",
            "organisation",
            "worked_from",
            "worked_to",
            "nominated_at",
            "opened_at",
            "submitted_at",
            "declined_at",
            "closed_at",
            "replaced_by_id",
            "reminders_sent",
        )
    )
    by_id = {reference.pk: reference for reference in references}
    for reference in references:
        reference.replacement = by_id.get(reference.replaced_by_id)  # type: ignore[arg-type, attr-defined]  # an attribute set at run time
    timeline = list(reference_request.timeline.only("id", "request_id", "at", "kind", "actor_id", "summary"))
    flags = fraud.flags_of(reference_request)  # with their referees and reviewers' names
    signals = triage.triage_of(reference_request, flags)  # weighed, grouped and summarised
    names = user_service.member_names({reference_request.created_by_id} | {event.actor_id for event in timeline})
    for event in timeline:
        event.actor_name = names.get(event.actor_id, "")  # type: ignore[arg-type, attr-defined]  # an attribute set at run time
    can_change = policy.can(membership, Action.CHANGE_REQUESTS)
    version = reference_request.questionnaire_version
    return render(
        request,
        "references/requests/detail.html",
        {
            "reference_request": reference_request,
            "status_line": status_line(reference_request, references),
            "candidate": reference_request.candidate,
            "questionnaire_name": version.questionnaire.name,
            "questionnaire_version": version.number,
            "references": references,
            "timeline": timeline,
            "flags": flags,
            "triage": signals,
            "member_names": names,
            "requested_by": names.get(reference_request.created_by_id, ""),  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
            "can_change": can_change and reference_request.is_open,
            "can_delete": can_change and request_flows.can_delete(reference_request),
            "can_review": policy.can(membership, Action.REVIEW_FLAGS),
            "can_view_reports": policy.can(membership, Action.VIEW_REPORTS),
            "has_report": report_data.has_content(references),
            "deadline_form": deadline_form or DeadlineForm(initial={"deadline": reference_request.deadline.date()}),
            "cancel_form": CancelForm(),
            "error": error,
        },
        status=status,
    )


@company_action(Action.VIEW_REQUESTS)
def request_detail(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    return _detail(request, request_or_404(request, request_id))


def _refused(request: CompanyRequest, reference_request: ReferenceRequest, exc: WorkflowError) -> HttpResponse:
    return _detail(request, request_or_404(request, reference_request.pk), status=400, error=str(exc))


@require_POST
@company_action(Action.CHANGE_REQUESTS)
def request_resend(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    reference_request = request_or_404(request, request_id)
    try:
        with company_db.atomic():
            request_flows.send_candidate_link(reference_request, actor=request.user)
    except WorkflowError as exc:
        return _refused(request, reference_request, exc)
    messages.success(
        request, f"A new link has been emailed to {reference_request.candidate.name}; the earlier one no longer works."
    )
    return redirect("request_detail", request_id=reference_request.pk)


@require_POST
@company_action(Action.CHANGE_REQUESTS)
def request_deadline(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    reference_request = request_or_404(request, request_id)
    form = DeadlineForm(request.POST)
    if not form.is_valid():
        return _detail(request, reference_request, status=400, deadline_form=form, error="Choose a valid new deadline.")
    try:
        request_flows.change_deadline(reference_request, form.cleaned_data["deadline"], actor=request.user)
    except WorkflowError as exc:
        return _refused(request, reference_request, exc)
    messages.success(request, f"Deadline moved to {dateformat.format(form.cleaned_data['deadline'], 'd F Y')}.")
    return redirect("request_detail", request_id=reference_request.pk)


def _confirm_page(request: CompanyRequest, reference_request: ReferenceRequest, action: str, form) -> HttpResponse:
    return render(
        request,
        "references/requests/confirm.html",
        {
            "reference_request": reference_request,
            "candidate": reference_request.candidate,
            "action": action,
            "form": form,
        },
    )


@require_POST
@company_action(Action.CHANGE_REQUESTS)
def request_cancel(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    reference_request = request_or_404(request, request_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _detail(
            request,
            reference_request,
            status=400,
            error="The reason must be plain text on one line, up to 500 characters.",
        )
    if not reference_request.is_open:
        return _refused(request, reference_request, WorkflowError("This request is already closed."))
    if not form.cleaned_data["confirm"]:
        return _confirm_page(
            request, reference_request, "cancel", CancelForm(initial={**form.cleaned_data, "confirm": True})
        )
    try:
        request_flows.cancel_request(reference_request, actor=request.user, reason=form.cleaned_data["reason"])
    except WorkflowError as exc:
        return _refused(request, reference_request, exc)
    messages.success(request, "Request cancelled: the candidate's and referees' links no longer work.")
    return redirect("request_detail", request_id=reference_request.pk)


@require_POST
@company_action(Action.CHANGE_REQUESTS)
def request_delete(request: CompanyRequest, request_id: UUID) -> HttpResponse:
    reference_request = request_or_404(request, request_id)
    form = DeleteForm(request.POST)
    if not form.is_valid():
        return _detail(request, reference_request, status=400, error="Confirm the deletion.")
    if not request_flows.can_delete(reference_request):
        return _refused(
            request,
            reference_request,
            WorkflowError("The candidate has already acted on this request: cancel it instead."),
        )
    if not form.cleaned_data["confirm"]:
        return _confirm_page(request, reference_request, "delete", DeleteForm(initial={"confirm": True}))
    name = reference_request.candidate.name
    try:
        request_flows.delete_request(reference_request, actor=request.user)
    except WorkflowError as exc:
        return _refused(request, reference_request, exc)
    messages.success(request, f"The request for {name} was deleted.")
    return redirect("requests")
